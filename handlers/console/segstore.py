"""The 客群与会员 page's figures, stored: a snapshot per manager, taken by a job each night.

Counting the behaviour matrix, the membership pyramid, the points, the level flows and the top
earners of a million customers reads every ``customer_segment`` and ``membership_account`` row:
seconds of database work, too much for a page view. So the ``console.segments`` job
(:mod:`handlers.console.segjobs`) runs :func:`rebuild` after the lifecycle (03:30) and
membership (04:00) nightlies, and stores the figures per manager (the manager of a customer's
earliest active relation, as the membership cards pick; ``""`` when nobody follows them), plus
the whole bank's totals under :data:`WHOLE_BANK`. Each figure is one ``GROUP BY`` over the raw
rows (the level flows one per month); the top earners are each manager's top 10, so a scope's
top 10 is the top 10 of its managers' top 10s. A page view then reads the rows of the scope's
managers (:func:`read`) and sums them.

Idempotent per day: :func:`rebuild` replaces the day's snapshot (the same raw rows give the
same rows), and storing one deletes the older ones (the page shows the newest only).
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Text, cast, delete, func, insert, literal, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.expression import ColumnElement

from handlers.console.scope import Scope
from handlers.console.segmodels import ConsoleSegCell, ConsoleSegFlow, ConsoleSegLevel, ConsoleSegRun, ConsoleSegTop
from handlers.contacts.api import Follow
from handlers.lifecycle.api import NO_SEGMENT, CustomerSegment
from handlers.membership.api import MembershipAccount, MembershipLevelChange, since_months

#: The owner of the whole bank's totals (no WeCom userid is ``*``).
WHOLE_BANK = "*"
#: The owner of customers no manager follows (counted in the whole bank only).
NOBODY = ""
#: Months of level flows, this one included (as ``scrm membership report``'s default).
FLOW_MONTHS = 3
#: Top earners kept per manager (and shown per scope).
TOP = 10
_BATCH = 5000  # rows per INSERT statement (executemany)
_TABLES = (ConsoleSegCell, ConsoleSegLevel, ConsoleSegFlow, ConsoleSegTop)

log = logging.getLogger("handlers.console.segstore")

Cell = tuple[str, str]  # (segment, stage)
Flow = tuple[str, str, str, str]  # (month, direction, previous, level)


@dataclass(frozen=True)
class Run:
    id: int
    day: date
    since: date
    computed_at: datetime


@dataclass
class Levels:
    members: int = 0
    points: int = 0
    reserved: int = 0


@dataclass
class Figures:
    """What one scope's managers' rows come to."""

    cells: Counter[Cell] = field(default_factory=Counter)
    levels: dict[str, Levels] = field(default_factory=dict)
    flows: Counter[Flow] = field(default_factory=Counter)
    top: list[tuple[str, int, int, str]] = field(default_factory=list)  # (member, growth, points, level)


def _owner_of() -> Any:
    """Subquery (external_userid, userid): each customer's earliest active relation."""
    ranked = (select(Follow.external_userid, Follow.userid,
                     func.row_number().over(partition_by=Follow.external_userid,
                                            order_by=(Follow.created_at, Follow.userid)).label("rn"))
              .where(Follow.status == "active").subquery("ranked"))
    return select(ranked.c.external_userid, ranked.c.userid).where(ranked.c.rn == 1).subquery("owner_of")


def _owner_col(owners: Any) -> ColumnElement[str]:
    return func.coalesce(owners.c.userid, literal(NOBODY))


async def count_cells(db: AsyncSession) -> dict[str, Counter[Cell]]:
    """Customers per manager and cell. One GROUP BY over (manager, segment list as stored,
    stage): the distinct segment lists are few, each is split into its rows here."""
    owners = _owner_of()
    owner = _owner_col(owners)
    segments = cast(CustomerSegment.segments, Text)  # PostgreSQL's json has no equality: group its text
    rows = await db.execute(
        select(owner, segments, CustomerSegment.stage, func.count())
        .select_from(CustomerSegment).outerjoin(owners, owners.c.external_userid == CustomerSegment.external_userid)
        .where(CustomerSegment.stage.is_not(None)).group_by(owner, segments, CustomerSegment.stage))
    out: dict[str, Counter[Cell]] = {}
    for who, names, stage, n in rows.all():
        cells = out.setdefault(who, Counter())
        for name in (json.loads(names) if names else None) or [NO_SEGMENT]:
            cells[(name, stage or "")] += int(n)
    return out


async def count_levels(db: AsyncSession) -> dict[str, dict[str, Levels]]:
    """Members and their points per manager and level: one GROUP BY."""
    owners = _owner_of()
    owner = _owner_col(owners)
    a = MembershipAccount
    rows = await db.execute(
        select(owner, a.level, func.count(), func.coalesce(func.sum(a.points), 0),
               func.coalesce(func.sum(a.reserved), 0))
        .select_from(a).outerjoin(owners, owners.c.external_userid == a.external_userid).group_by(owner, a.level))
    out: dict[str, dict[str, Levels]] = {}
    for who, level, n, points, reserved in rows.all():
        out.setdefault(who, {})[level] = Levels(int(n), int(points), int(reserved))
    return out


def months_from(since: date, today: date) -> list[tuple[str, date, date]]:
    """("YYYY-MM", first day, first day of the next month) from ``since``'s month to ``today``'s."""
    out: list[tuple[str, date, date]] = []
    first = since.replace(day=1)
    while first <= today:
        following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
        out.append((first.strftime("%Y-%m"), first, following))
        first = following
    return out


async def count_flows(db: AsyncSession, since: date, today: date, tz: ZoneInfo) -> dict[str, Counter[Flow]]:
    """Level moves per manager, local month, direction and levels: one GROUP BY per month (the
    month is the bank's local one; its bounds are computed here, not by each database's date
    functions)."""
    owners = _owner_of()
    owner = _owner_col(owners)
    c = MembershipLevelChange
    out: dict[str, Counter[Flow]] = {}
    for month, first, following in months_from(since, today):
        start, end = datetime.combine(first, time(0), tz), datetime.combine(following, time(0), tz)
        rows = await db.execute(
            select(owner, c.direction, c.previous, c.level, func.count())
            .select_from(c).outerjoin(owners, owners.c.external_userid == c.external_userid)
            .where(c.at >= start, c.at < end).group_by(owner, c.direction, c.previous, c.level))
        for who, direction, previous, level, n in rows.all():
            out.setdefault(who, Counter())[(month, direction, previous, level)] += int(n)
    return out


async def top_earners(db: AsyncSession) -> dict[str, list[tuple[str, int, int, str]]]:
    """Each manager's :data:`TOP` members with the most growth (ties by id): one ranked read."""
    owners = _owner_of()
    owner = _owner_col(owners)
    a = MembershipAccount
    ranked = (select(owner.label("owner"), a.external_userid, a.growth, a.points, a.level,
                     func.row_number().over(partition_by=owner, order_by=(a.growth.desc(), a.external_userid))
                     .label("rn"))
              .select_from(a).outerjoin(owners, owners.c.external_userid == a.external_userid).subquery("ranked_top"))
    rows = await db.execute(select(ranked.c.owner, ranked.c.external_userid, ranked.c.growth, ranked.c.points,
                                   ranked.c.level).where(ranked.c.rn <= TOP))
    out: dict[str, list[tuple[str, int, int, str]]] = {}
    for who, member, growth, points, level in rows.all():
        out.setdefault(who, []).append((member, int(growth), int(points), level))
    return out


def best(rows: Iterable[tuple[str, int, int, str]], n: int = TOP) -> list[tuple[str, int, int, str]]:
    """The ``n`` with the most growth, ties by id."""
    return sorted(rows, key=lambda r: (-r[1], r[0]))[:n]


async def rebuild(db: AsyncSession, today: date, now: datetime, tz: ZoneInfo) -> Run:
    """Count everything from the raw rows and store it as ``today``'s snapshot, replacing one
    stored for ``today`` already, and dropping the older ones. In the caller's transaction."""
    since = since_months(today, FLOW_MONTHS)
    cells, levels = await count_cells(db), await count_levels(db)
    flows, top = await count_flows(db, since, today, tz), await top_earners(db)
    # Today's run first, rows and all: SQLite may give the new run the replaced one's id.
    replaced = select(ConsoleSegRun.id).where(ConsoleSegRun.day == today).scalar_subquery()
    for table in _TABLES:
        await db.execute(delete(table).where(table.run_id.in_(replaced)))
    await db.execute(delete(ConsoleSegRun).where(ConsoleSegRun.day == today))
    run = ConsoleSegRun(day=today, since=since, computed_at=now)
    db.add(run)
    await db.flush()
    rows = _rows(run.id, cells, levels, flows, top)
    for table, table_rows in rows.items():
        for i in range(0, len(table_rows), _BATCH):
            await db.execute(insert(table), table_rows[i:i + _BATCH])
    older = select(ConsoleSegRun.id).where(ConsoleSegRun.id != run.id)
    for table in _TABLES:
        await db.execute(delete(table).where(table.run_id != run.id))
    await db.execute(delete(ConsoleSegRun).where(ConsoleSegRun.id.in_(older.scalar_subquery())))
    log.info("console segments snapshot stored for %s: %s", today.isoformat(),
             ", ".join(f"{t.__tablename__} {len(r)}" for t, r in rows.items()))
    return Run(run.id, run.day, run.since, run.computed_at)


def _rows(run_id: int, cells: dict[str, Counter[Cell]], levels: dict[str, dict[str, Levels]],
          flows: dict[str, Counter[Flow]], top: dict[str, list[tuple[str, int, int, str]]]
          ) -> dict[type[Any], list[dict[str, Any]]]:
    """The rows to store: one per manager and key, and the whole bank's total per key."""
    bank_cells: Counter[Cell] = sum(cells.values(), Counter())
    bank_flows: Counter[Flow] = sum(flows.values(), Counter())
    bank_levels: dict[str, Levels] = {}
    for per_level in levels.values():
        for level, lv in per_level.items():
            total = bank_levels.setdefault(level, Levels())
            total.members, total.points, total.reserved = (total.members + lv.members, total.points + lv.points,
                                                           total.reserved + lv.reserved)
    bank_top = best(r for rows in top.values() for r in rows)
    cells = {**cells, WHOLE_BANK: bank_cells}
    levels = {**levels, WHOLE_BANK: bank_levels}
    flows = {**flows, WHOLE_BANK: bank_flows}
    top = {**top, WHOLE_BANK: bank_top}
    return {
        ConsoleSegCell: [{"run_id": run_id, "owner": o, "segment": s, "stage": st, "count": n}
                         for o, c in cells.items() for (s, st), n in c.items() if n],
        ConsoleSegLevel: [{"run_id": run_id, "owner": o, "level": lv, "members": v.members, "points": v.points,
                           "reserved": v.reserved} for o, per in levels.items() for lv, v in per.items()],
        ConsoleSegFlow: [{"run_id": run_id, "owner": o, "month": m, "direction": d, "previous": p, "level": lv,
                          "count": n} for o, f in flows.items() for (m, d, p, lv), n in f.items() if n],
        ConsoleSegTop: [{"run_id": run_id, "owner": o, "external_userid": c, "growth": g, "points": p, "level": lv}
                        for o, rows in top.items() for c, g, p, lv in rows],
    }


async def latest(db: AsyncSession) -> Run | None:
    """The newest snapshot (the page's), or None before the job has ever run."""
    row = (await db.execute(select(ConsoleSegRun).order_by(ConsoleSegRun.day.desc(), ConsoleSegRun.id.desc())
                            .limit(1))).scalar()
    return Run(row.id, row.day, row.since, row.computed_at) if row is not None else None


async def read(db: AsyncSession, run: Run, scope: Scope) -> Figures:
    """``run``'s figures as ``scope`` sees them: the sum of its managers' rows (the whole bank's
    stored totals, which also count customers nobody follows)."""
    owners = [WHOLE_BANK] if scope.whole_bank else sorted(scope.members)
    out = Figures()
    if not owners:
        return out
    c, lv, f, t = ConsoleSegCell, ConsoleSegLevel, ConsoleSegFlow, ConsoleSegTop
    for segment, stage, n in (await db.execute(
            select(c.segment, c.stage, func.sum(c.count)).where(c.run_id == run.id, c.owner.in_(owners))
            .group_by(c.segment, c.stage))).all():
        out.cells[(segment, stage)] = int(n)
    for level, members, points, reserved in (await db.execute(
            select(lv.level, func.sum(lv.members), func.sum(lv.points), func.sum(lv.reserved))
            .where(lv.run_id == run.id, lv.owner.in_(owners)).group_by(lv.level))).all():
        out.levels[level] = Levels(int(members), int(points), int(reserved))
    for month, direction, previous, level, n in (await db.execute(
            select(f.month, f.direction, f.previous, f.level, func.sum(f.count))
            .where(f.run_id == run.id, f.owner.in_(owners)).group_by(f.month, f.direction, f.previous, f.level))).all():
        out.flows[(month, direction, previous, level)] = int(n)
    out.top = [(m, int(g), int(p), level) for m, g, p, level in (await db.execute(
        select(t.external_userid, t.growth, t.points, t.level).where(t.run_id == run.id, t.owner.in_(owners))
        .order_by(t.growth.desc(), t.external_userid).limit(TOP))).all()]
    return out
