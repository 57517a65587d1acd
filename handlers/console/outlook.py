"""The SOP calendar's outlook, stored: the planner's next :data:`DAYS` days, computed by a job.

Planning the whole bank runs :class:`handlers.sop.api.DayPlanner` over every group and candidate
customer, day by day: tens of seconds of CPU on a million customers, too much for a page view
(the page used to do it, on the service's event loop, holding every other page behind it). So
the ``console.outlook`` job (:mod:`handlers.console.jobs`) runs :func:`refresh` once a day and
after each playbook reload, and stores what the planner decided as counts per (day, step,
material, outcome, sender) in ``console_outlook`` — plus each (day, step, material, outcome)'s
whole-bank total under the sender :data:`WHOLE_BANK`, so the whole bank's view reads a few
hundred rows rather than summing every manager's. A viewer's calendar is then one indexed
statement: the rows of the senders inside their scope (:func:`read`), summed.

Idempotent: a run is keyed by (first day, days, playbook version); :func:`refresh` with a key
already stored does nothing, so a replayed event, a second instance or a restart on the same
day and playbook costs one lookup. Storing a run deletes the older ones (the page shows the
newest only).
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.console.calendar import BankPlan, ScopedPlan, ViewKey, plan_bank
from handlers.console.models import ConsoleOutlook, ConsoleOutlookRun
from handlers.console.scope import Scope
from scrm.playbook import Playbook

#: The longest period the page shows (its 7-day view is the first week of it).
DAYS = 30
#: The sender of the whole bank's totals (no WeCom userid is ``*``).
WHOLE_BANK = "*"
_BATCH = 5000  # rows per INSERT statement (executemany)

log = logging.getLogger("handlers.console.outlook")


@dataclass(frozen=True)
class Run:
    """A stored outlook: its window, the playbook version it was planned with, and when."""

    id: int
    start: date
    days: int
    version: str
    computed_at: datetime
    #: The first raw skip reason per (day, source, step, skip kind), bank-wide (the page's tooltips).
    reasons: dict[tuple[date, str, str, str], str]


def rows_of(plan: BankPlan) -> list[dict[str, Any]]:
    """The rows to store for ``plan``: one per sender, and the whole bank's total per key."""
    totals: Counter[ViewKey] = Counter()
    out: list[dict[str, Any]] = []
    for key, n in plan.counts.items():
        totals[key[:6]] += n
        out.append(_row(key[:6], key[6], n))
    out += [_row(key, WHOLE_BANK, n) for key, n in totals.items()]
    return out


def _row(key: ViewKey, owner: str, n: int) -> dict[str, Any]:
    day, at, source, step, material, outcome = key
    return {"owner": owner, "day": day, "at": at, "source": source, "step": step, "material": material,
            "outcome": outcome, "count": n}


async def stored_run(db: AsyncSession, start: date, days: int, version: str) -> Run | None:
    row = (await db.execute(select(ConsoleOutlookRun).where(
        ConsoleOutlookRun.start == start, ConsoleOutlookRun.days == days,
        ConsoleOutlookRun.version == version))).scalar_one_or_none()
    return _run(row) if row is not None else None


async def latest(db: AsyncSession) -> Run | None:
    """The newest stored outlook (the page's), or None before the job has ever run."""
    row = (await db.execute(select(ConsoleOutlookRun).order_by(ConsoleOutlookRun.computed_at.desc(),
                                                               ConsoleOutlookRun.id.desc()).limit(1))).scalar()
    return _run(row) if row is not None else None


def _run(row: ConsoleOutlookRun) -> Run:
    reasons = {(date.fromisoformat(d), source, step, kind): reason
               for d, source, step, kind, reason in row.reasons.get("reasons", ())}
    return Run(row.id, row.start, row.days, row.version, row.computed_at, reasons)


async def refresh(db: AsyncSession, pb: Playbook, version: str, today: date, now: datetime) -> Run | None:
    """Plan :data:`DAYS` days from ``today`` and store them, unless this (day, version) is stored
    already; returns the new run, or None when there was nothing to do. In the caller's
    transaction (the job's): the new run and the deletion of the old ones commit together."""
    if await stored_run(db, today, DAYS, version) is not None:
        return None
    plan = await plan_bank(db, pb, today, DAYS)
    return await store(db, plan, version, now)


async def store(db: AsyncSession, plan: BankPlan, version: str, now: datetime) -> Run:
    reasons = [[d.isoformat(), source, step, kind, reason] for (d, source, step, kind), reason in plan.reasons.items()]
    run = ConsoleOutlookRun(start=plan.start, days=plan.days, version=version, computed_at=now,
                            reasons={"reasons": reasons})
    db.add(run)
    await db.flush()
    rows = [{**r, "run_id": run.id} for r in rows_of(plan)]
    for i in range(0, len(rows), _BATCH):
        await db.execute(insert(ConsoleOutlook), rows[i:i + _BATCH])
    older = select(ConsoleOutlookRun.id).where(ConsoleOutlookRun.id != run.id).scalar_subquery()
    await db.execute(delete(ConsoleOutlook).where(ConsoleOutlook.run_id.in_(older)))
    await db.execute(delete(ConsoleOutlookRun).where(ConsoleOutlookRun.id != run.id))
    log.info("console outlook stored: %d days from %s, %d rows", plan.days, plan.start.isoformat(), len(rows),
             extra={"version": version})
    return _run(run)


async def read(db: AsyncSession, run: Run, scope: Scope, days: int) -> ScopedPlan:
    """The first ``days`` days of ``run`` as ``scope`` sees them (the semantics of
    :func:`handlers.console.calendar.scoped`: senders inside the scope; the whole bank also
    counts what nobody is known to send)."""
    days = min(days, run.days)
    last = run.start + timedelta(days=days - 1)
    o = ConsoleOutlook
    owners = [WHOLE_BANK] if scope.whole_bank else sorted(scope.members)
    out = ScopedPlan(run.start, days, reasons={k: v for k, v in run.reasons.items() if k[0] <= last})
    if owners:
        rows = await db.execute(select(o.day, o.at, o.source, o.step, o.material, o.outcome, func.sum(o.count))
                                .where(o.run_id == run.id, o.owner.in_(owners), o.day <= last)
                                .group_by(o.day, o.at, o.source, o.step, o.material, o.outcome))
        for day, at, source, step, material, outcome, n in rows.all():
            out.counts[(day, at, source, step, material, outcome)] += int(n)
    return out

