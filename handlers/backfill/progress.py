"""The durable state of a corp's backfill: who runs it (a lease), and where each stage stands.

A stage's position is saved in the transaction that writes its page, so after a crash the next
run starts with the page after the last one committed. Only one process runs a corp's backfill
at a time: the run row carries a lease renewed with every page; a lease left by a process that
is known to be gone (same machine, process table says so) or that expired is taken over.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.backfill.models import BackfillRun, BackfillStage
from scrm.adapters.db.engine import dialect_of, insert_ignore, table_of
from scrm.kernel.liveness import pid_space, process_start

# In the order they run: the directory first (relations are read per member), the tag library
# before the relations that carry tags, groups after the customers they hold.
STAGES = ("members", "tags", "relations", "groups", "ways")
RUNNING, DONE, PENDING = "running", "done", "pending"


class LeaseLost(Exception):
    """Another process took the run over (this one stalled past its lease): stop writing."""


def owner_id() -> str:
    """This process, as a lease owner: its process table, pid and start tick."""
    pid = os.getpid()
    return f"{pid_space()}|{pid}|{process_start(pid) or ''}"


def _gone(owner: str) -> bool:
    """True when ``owner`` ran on this machine's process table and that process has ended."""
    space, _, rest = owner.partition("|")
    pid, _, start = rest.partition("|")
    if not space or space != pid_space() or not pid.isdigit() or not start:
        return False
    return process_start(int(pid)) != start


@dataclass(frozen=True)
class Claim:
    """The outcome of asking to run: ``ok`` to go on; otherwise ``reason`` says why not."""

    ok: bool
    status: str
    reason: str = ""


async def claim(session: AsyncSession, corp_id: str, owner: str, now: datetime, lease_s: float, *,
                trigger: str, again: bool = False) -> Claim:
    """Take (or resume) the corp's run. A finished run is started afresh only with ``again``."""
    run_row = {"corp_id": corp_id, "status": RUNNING, "trigger": trigger, "started_at": now, "lease_owner": owner,
               "lease_until": now + timedelta(seconds=lease_s)}
    inserted = await session.execute(insert_ignore(dialect_of(session), table_of(BackfillRun), ["corp_id"]),
                                     run_row)
    run = (await session.scalars(select(BackfillRun).where(BackfillRun.corp_id == corp_id)
                                 .with_for_update().execution_options(populate_existing=True))).one()
    fresh = bool(getattr(inserted, "rowcount", 0))
    if not fresh:
        if run.status == DONE and not again:
            return Claim(False, DONE, f"the backfill of corp {corp_id} finished at {run.finished_at:%Y-%m-%d %H:%M} "
                                      "(run it again with --again)")
        held = run.lease_owner and run.lease_owner != owner and run.lease_until is not None and run.lease_until > now
        if held and run.lease_owner is not None and not _gone(run.lease_owner):
            return Claim(False, RUNNING, f"the backfill of corp {corp_id} is running elsewhere "
                                         f"(lease until {run.lease_until:%H:%M:%S} UTC)")
        again = again and run.status == DONE
        values: dict[str, Any] = {"status": RUNNING, "lease_owner": owner,
                                  "lease_until": now + timedelta(seconds=lease_s), "last_error": None}
        if again:
            values |= {"started_at": now, "finished_at": None, "trigger": trigger}
        await session.execute(update(BackfillRun).where(BackfillRun.corp_id == corp_id).values(**values))
    rows = [{"corp_id": corp_id, "stage": s, "status": PENDING, "position": {}, "pages": 0, "items": 0, "skipped": 0,
             "updated_at": now, "note": ""} for s in STAGES]
    await session.execute(insert_ignore(dialect_of(session), table_of(BackfillStage), ["corp_id", "stage"]), rows)
    if again:
        await session.execute(update(BackfillStage).where(BackfillStage.corp_id == corp_id)
                              .values(status=PENDING, position={}, pages=0, items=0, skipped=0, note="",
                                      updated_at=now))
    return Claim(True, RUNNING)


async def renew(session: AsyncSession, corp_id: str, owner: str, now: datetime, lease_s: float) -> None:
    """Extend our lease (the first write of every page's transaction); :class:`LeaseLost` if taken."""
    result = await session.execute(update(BackfillRun)
                                   .where(BackfillRun.corp_id == corp_id, BackfillRun.lease_owner == owner)
                                   .values(lease_until=now + timedelta(seconds=lease_s)))
    if not getattr(result, "rowcount", 0):
        raise LeaseLost(f"the backfill of corp {corp_id} was taken over by another process")


async def finish(session: AsyncSession, corp_id: str, owner: str, now: datetime) -> None:
    await session.execute(update(BackfillRun).where(BackfillRun.corp_id == corp_id, BackfillRun.lease_owner == owner)
                          .values(status=DONE, finished_at=now, lease_owner=None, lease_until=None, last_error=None))


async def release(session: AsyncSession, corp_id: str, owner: str, error: str | None) -> None:
    """Give the run up (it stays resumable where it stopped), saying why."""
    await session.execute(update(BackfillRun).where(BackfillRun.corp_id == corp_id, BackfillRun.lease_owner == owner)
                          .values(lease_owner=None, lease_until=None, last_error=error[:2000] if error else None))


async def stage_of(session: AsyncSession, corp_id: str, stage: str) -> BackfillStage:
    row = await session.get(BackfillStage, (corp_id, stage), populate_existing=True)
    assert row is not None, "claim() creates every stage row"
    return row


async def save_page(session: AsyncSession, corp_id: str, stage: str, position: dict[str, Any], *, items: int,
                    skipped: int, now: datetime) -> None:
    """The stage has written one more page; ``position`` is where the next one is read."""
    await session.execute(update(BackfillStage)
                          .where(BackfillStage.corp_id == corp_id, BackfillStage.stage == stage)
                          .values(status=RUNNING, position=position, pages=BackfillStage.pages + 1,
                                  items=BackfillStage.items + items, skipped=BackfillStage.skipped + skipped,
                                  updated_at=now))


async def recount(session: AsyncSession, corp_id: str, stage: str, items: int, skipped: int) -> None:
    """Correct the counts :func:`save_page` took from the page, once its writer said what it did."""
    await session.execute(update(BackfillStage)
                          .where(BackfillStage.corp_id == corp_id, BackfillStage.stage == stage)
                          .values(items=BackfillStage.items + items, skipped=BackfillStage.skipped + skipped))


async def finish_stage(session: AsyncSession, corp_id: str, stage: str, now: datetime, note: str = "") -> None:
    values: dict[str, Any] = {"status": DONE, "position": {}, "updated_at": now}
    if note:
        values["note"] = note[:512]
    await session.execute(update(BackfillStage)
                          .where(BackfillStage.corp_id == corp_id, BackfillStage.stage == stage).values(**values))


async def stages(session: AsyncSession, corp_id: str) -> list[BackfillStage]:
    """Every stage of the corp's backfill, in running order."""
    rows = {r.stage: r for r in (await session.scalars(
        select(BackfillStage).where(BackfillStage.corp_id == corp_id)
        .execution_options(populate_existing=True))).all()}
    return [rows[s] for s in STAGES if s in rows]


async def run_of(session: AsyncSession, corp_id: str) -> BackfillRun | None:
    return await session.get(BackfillRun, corp_id, populate_existing=True)
