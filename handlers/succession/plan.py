"""Turning a handover into a batch: choose the successors, record one item per customer or
group, queue the WeCom calls (≤100 targets each) and the batch's first follow-up — all in the
caller's transaction, so a crash leaves either the whole plan or nothing.

Targets already in an open transfer (any batch) are left alone, and a resigned member's customer
whose handover failed is tried again only after ``retry_failed_h``: a second sweep, or the same
move asked twice, changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.contacts.api import Follow, Member
from handlers.succession import calls
from handlers.succession.events import SuccessionFollow
from handlers.succession.models import OPEN_STATUSES, SuccessionBatch, SuccessionItem
from handlers.succession.rules import Candidate, Chooser, Rules
from scrm.adapters.db.engine import dialect_of, insert_ignore, table_of
from scrm.kernel.outbox import PRIORITY_DEFAULT, Outbox
from scrm.kernel.scheduler import Scheduler, TriggerSpec

CUSTOMER, GROUP = "customer", "group"
_IN_CHUNK = 500  # bound parameters per IN list
NO_SUCCESSOR = "no successor by the rules (sop/succession.yaml): no active member fits"


@dataclass
class Handover:
    """What one member left behind, as WeCom lists it."""

    userid: str
    customers: list[str] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Planned:
    batch_id: str
    items: int
    skipped: int  # already in an open (or recently failed) transfer


async def candidates(session: AsyncSession) -> dict[str, Candidate]:
    """Active members with how many customers they actively look after."""
    loads = dict((await session.execute(select(Follow.userid, func.count()).where(Follow.status == "active")
                                        .group_by(Follow.userid))).all())
    rows = await session.execute(select(Member.userid, Member.department).where(Member.status == "active"))
    return {u: Candidate(u, d or "", int(loads.get(u, 0))) for u, d in rows.all()}


async def departments(session: AsyncSession, userids: Iterable[str]) -> dict[str, str]:
    ids = list(dict.fromkeys(userids))
    rows = await session.execute(select(Member.userid, Member.department).where(Member.userid.in_(ids)))
    return {u: d or "" for u, d in rows.all()}


async def busy_targets(session: AsyncSession, targets: Sequence[str], now: datetime, retry_failed: timedelta,
                       ) -> set[str]:
    """Targets in an open transfer, or whose resigned handover failed less than ``retry_failed`` ago."""
    out: set[str] = set()
    for i in range(0, len(targets), _IN_CHUNK):
        chunk = list(targets[i:i + _IN_CHUNK])
        rows = await session.scalars(select(SuccessionItem.target).where(
            SuccessionItem.target.in_(chunk),
            or_(SuccessionItem.status.in_(OPEN_STATUSES),
                (SuccessionItem.status != "done") & (SuccessionItem.finished_at > now - retry_failed))))
        out.update(rows.all())
    return out


async def _put_batch(session: AsyncSession, batch_id: str, kind: str, handover: str, source: str, message: str,
                     now: datetime) -> bool:
    row = {"id": batch_id, "kind": kind, "handover_userid": handover, "source": source, "message": message,
           "created_at": now, "notified": [], "status": "open"}
    res = await session.execute(insert_ignore(dialect_of(session), table_of(SuccessionBatch), ["id"]), row)
    return getattr(res, "rowcount", 1) != 0


async def _queue(session: AsyncSession, outbox: Outbox, batch_id: str, target_type: str, handover: str,
                 assigned: Mapping[str, list[tuple[str, str]]], *, resigned: bool, message: str,
                 now: datetime) -> list[dict[str, object]]:
    """Queue the calls (one per takeover and 100 targets) and return their item rows."""
    rows: list[dict[str, object]] = []
    for takeover, targets in sorted(assigned.items()):
        for n in range(0, len(targets), calls.CHUNK):
            chunk = targets[n:n + calls.CHUNK]
            ids = [t for t, _ in chunk]
            key = f"succession:{batch_id}:{target_type}:{takeover}:{n // calls.CHUNK}"
            if target_type == GROUP:
                api, body = calls.GROUP_TRANSFER, calls.group_body(ids, takeover)
            else:
                api = calls.RESIGNED_TRANSFER if resigned else calls.ONJOB_TRANSFER
                body = calls.transfer_body(handover, takeover, ids, resigned=resigned, message=message)
            # One lane per handover: its calls go one after another, in order.
            await outbox.add_action(session, key, calls.KIND, {"api": api, "body": body},
                                    priority=PRIORITY_DEFAULT, lane=f"succession:{handover}")
            rows += [_item(batch_id, target_type, t, handover, takeover, rule, key, now) for t, rule in chunk]
    return rows


def _item(batch_id: str, target_type: str, target: str, handover: str, takeover: str, rule: str, key: str,
          now: datetime, *, status: str = "planned", reason: str = "") -> dict[str, object]:
    return {"batch_id": batch_id, "target_type": target_type, "target": target, "handover_userid": handover,
            "takeover_userid": takeover, "rule": rule[:128], "call_key": key, "status": status, "errcode": None,
            "reason": reason[:256], "created_at": now, "started_at": None,
            "finished_at": now if status not in OPEN_STATUSES else None}


async def _insert_items(session: AsyncSession, rows: list[dict[str, object]]) -> None:
    if rows:
        await session.execute(insert_ignore(dialect_of(session), table_of(SuccessionItem),
                                            ["batch_id", "target_type", "target"]), rows)


async def schedule_follow(session: AsyncSession, scheduler: Scheduler, batch_id: str, at: datetime) -> None:
    """(Re)arm the batch's follow-up job at ``at``."""
    await scheduler.put_job(session, f"succession.follow:{batch_id}"[:256], SuccessionFollow,
                            TriggerSpec(type="date", at=at), payload={"batch_id": batch_id},
                            misfire_grace_s=30 * 86400)


async def plan_resigned(session: AsyncSession, outbox: Outbox, scheduler: Scheduler, rules: Rules,
                        handover: Handover, batch_id: str, *, now: datetime, first_follow: timedelta,
                        retry_failed: timedelta) -> Planned | None:
    """Hand over what a resigned member left (customers and groups) by the rules."""
    busy = await busy_targets(session, [*handover.customers, *handover.groups], now, retry_failed)
    customers = [c for c in dict.fromkeys(handover.customers) if c not in busy]
    groups = [g for g in dict.fromkeys(handover.groups) if g not in busy]
    skipped = len(handover.customers) + len(handover.groups) - len(customers) - len(groups)
    if not customers and not groups:
        return None
    await _put_batch(session, batch_id, "resigned", handover.userid, "sweep", "", now)
    chooser = Chooser(rules, await candidates(session))
    dept = (await departments(session, [handover.userid])).get(handover.userid, "")
    rows: list[dict[str, object]] = []
    for target_type, targets in ((CUSTOMER, customers), (GROUP, groups)):
        assigned: dict[str, list[tuple[str, str]]] = {}
        for target in targets:
            choice = chooser.choose(handover.userid, dept)
            if choice is None:
                rows.append(_item(batch_id, target_type, target, handover.userid, "", "", "", now, status="failed",
                                  reason=NO_SUCCESSOR))
                continue
            assigned.setdefault(choice[0], []).append((target, choice[1]))
        rows += await _queue(session, outbox, batch_id, target_type, handover.userid, assigned, resigned=True,
                             message="", now=now)
    await _insert_items(session, rows)
    await schedule_follow(session, scheduler, batch_id, now + first_follow)
    return Planned(batch_id, len(rows), skipped)


async def plan_move(session: AsyncSession, outbox: Outbox, scheduler: Scheduler, *, batch_id: str, handover: str,
                    takeover: str, external_userids: Sequence[str], message: str, origin: str, now: datetime,
                    first_follow: timedelta) -> Planned | None:
    """An in-office move of ``external_userids`` from ``handover`` to ``takeover``; None when this
    request was planned before. Customers already in an open transfer are recorded failed."""
    if await session.get(SuccessionBatch, batch_id) is not None:
        return None
    await _put_batch(session, batch_id, "move", handover, origin, message, now)
    targets = list(dict.fromkeys(external_userids))
    busy = await busy_targets(session, targets, now, timedelta(0))
    members = await candidates(session)
    rows: list[dict[str, object]] = []
    problem = ("the new manager is not an active member" if takeover not in members
               else "the same manager on both sides" if takeover == handover else "")
    ready: list[tuple[str, str]] = []
    for ext in targets:
        if problem or ext in busy:
            reason = problem or "already in an open transfer (see `scrm succession list`)"
            rows.append(_item(batch_id, CUSTOMER, ext, handover, takeover, origin, "", now, status="failed",
                              reason=reason))
        else:
            ready.append((ext, origin))
    rows += await _queue(session, outbox, batch_id, CUSTOMER, handover, {takeover: ready} if ready else {},
                         resigned=False, message=message, now=now)
    await _insert_items(session, rows)
    if ready:
        await schedule_follow(session, scheduler, batch_id, now + first_follow)
    return Planned(batch_id, len(rows), len(busy))
