"""Posting behaviours to the ledger: caps, idempotency by source, balances and upgrades.

Everything happens in the caller's transaction, for a batch of earnings at once (a handler posts
one; a backfill or a test posts thousands): the members' account rows are locked first (created
at the lowest level when new), so two transactions earning for the same member queue instead of
both passing a cap. Then, in time order, each earning is

- skipped when its (source, member) is already in the ledger: a replayed event adds nothing;
- skipped when the behaviour reached its daily or monthly cap for the member (local days; a
  capped earning is not recorded, so replaying it finds the same full cap and skips again);
- written as a points entry and/or a growth entry, the account's balances moved by the same
  amounts in the same transaction (no points when they would already be due: an event
  reported very late);
- followed by an upgrade when the growth earned over the last ``window_days`` now reaches a
  higher level (one :class:`LevelChanged` per upgrade, caused by that earning's source).

Nothing here takes points away; lapses are :mod:`.nightly`'s.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import String, and_, bindparam, column, func, or_, select, update, values
from sqlalchemy.ext.asyncio import AsyncSession

from scrm.adapters.db.engine import dialect_of, insert_ignore, table_of
from scrm.kernel.inbox import Inbox

from .events import LevelChanged
from .models import EARN, GROWTH, POINTS, MembershipAccount, MembershipEntry, MembershipLevelChange
from .rules import Behaviour, Membership

# (source, member) pairs a ledger look-up asks for at once: two bound values each, well under
# SQLite's 32,766.
PAIRS_PER_QUERY = 5000


@dataclass(frozen=True)
class Earning:
    """A member did something a behaviour of sop/membership.yaml rewards."""

    external_userid: str
    behaviour: str  # the behaviour's name
    source: str  # what happened, unique for this member (an event id, a material opened …)
    at: datetime


@dataclass
class Posted:
    """What one post did."""

    entries: int = 0  # earnings written
    repeated: int = 0  # already in the ledger
    capped: int = 0  # over a daily or monthly cap
    changes: list[LevelChanged] = field(default_factory=list)


def month_start(day: date) -> date:
    return day.replace(day=1)


def month_end(day: date) -> date:
    nxt = (day.replace(day=28) + timedelta(days=4)).replace(day=1)
    return nxt - timedelta(days=1)


async def lock_accounts(session: AsyncSession, ids: Sequence[str], rules: Membership, at: datetime, tz: ZoneInfo,
                        *, now: datetime) -> dict[str, dict[str, Any]]:
    """The members' account rows, created at the lowest level where missing, locked (see
    :func:`lock_existing`). A new account's lapses are written up to ``now`` (nothing is awarded
    already due), so the nightly run's "anything due?" need not look into its ledger."""
    table = table_of(MembershipAccount)
    ordered = sorted(set(ids))
    day = at.astimezone(tz).date()
    await session.execute(insert_ignore(dialect_of(session), table, ["external_userid"]),
                          [{"external_userid": e, "points": 0, "growth": 0, "level": rules.levels[0].name,
                            "level_since": day, "reviewed_on": None, "lapsed_until": now,
                            "updated_at": at} for e in ordered])
    return await lock_existing(session, ordered)


async def lock_existing(session: AsyncSession, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The account rows these members have, locked (PostgreSQL; SQLite has one writer) in id
    order so two transactions never wait on each other crosswise."""
    table = table_of(MembershipAccount)
    rows = await session.execute(select(table).where(table.c.external_userid.in_(sorted(set(ids))))
                                 .order_by(table.c.external_userid).with_for_update())
    return {r.external_userid: dict(r._mapping) for r in rows.all()}


async def save_accounts(session: AsyncSession, accounts: Iterable[dict[str, Any]]) -> None:
    table = table_of(MembershipAccount)
    rows = [{"k": a["external_userid"], "p": a["points"], "g": a["growth"], "l": a["level"], "s": a["level_since"],
             "r": a["reviewed_on"], "x": a["lapsed_until"], "u": a["updated_at"]} for a in accounts]
    if rows:
        stmt = (update(table).where(table.c.external_userid == bindparam("k"))
                .values(points=bindparam("p"), growth=bindparam("g"), level=bindparam("l"),
                        level_since=bindparam("s"), reviewed_on=bindparam("r"), lapsed_until=bindparam("x"),
                        updated_at=bindparam("u")))
        await session.execute(stmt, rows)


async def record_changes(session: AsyncSession, inbox: Inbox | None, changes: Sequence[LevelChanged]) -> None:
    """The level changes as rows (once per member and cause) and as internal events."""
    if not changes:
        return
    await session.execute(insert_ignore(dialect_of(session), table_of(MembershipLevelChange),
                                        ["external_userid", "cause"]),
                          [{"external_userid": c.external_userid, "previous": c.previous, "level": c.level,
                            "direction": c.direction, "cause": c.cause, "at": c.at} for c in changes])
    if inbox is not None:
        await inbox.add_internals(session, [(c, f"membership.level:{c.external_userid}:{c.cause}") for c in changes])


async def already_posted(session: AsyncSession, pairs: set[tuple[str, str]]) -> set[tuple[str, str]]:
    """Which of these (source, member) pairs the ledger has. Looked up pair by pair (a VALUES list
    joined on the unique index): ``source IN (…) AND member IN (…)`` probes every source with
    every member, which grows with the square of the batch (a day of 10,000 members: tens of
    millions of probes)."""
    entry = table_of(MembershipEntry)
    ordered = sorted(pairs)
    found: set[tuple[str, str]] = set()
    for lo in range(0, len(ordered), PAIRS_PER_QUERY):
        asked = (values(column("source", String), column("member", String), name="asked")
                 .data(ordered[lo:lo + PAIRS_PER_QUERY]).cte())
        rows = await session.execute(
            select(entry.c.source, entry.c.external_userid).distinct()
            .join_from(asked, entry, and_(entry.c.source == asked.c.source,
                                          entry.c.external_userid == asked.c.member)))
        found.update((s, c) for s, c in rows.all())
    return found


async def growth_in_windows(session: AsyncSession, ids: Sequence[str], first: datetime, last: datetime,
                            window: timedelta) -> tuple[dict[str, int], dict[str, list[tuple[datetime, int]]]]:
    """The ledger's growth the upgrade windows of a batch earned from ``first`` to ``last`` see
    (an earning at ``t`` sees ``(t - window, t]``): per member, one sum of what every earning's
    window holds — ``(last - window, first]`` — and, one by one, the entries only some windows
    hold — ``(first - window, last - window]`` and ``(first, last]``. A day's batch so reads a sum
    and a day or two of entries at each edge, not the whole window (a year, in the shipped YAML)."""
    entry = table_of(MembershipEntry)
    member = [entry.c.external_userid.in_(ids), entry.c.kind == GROWTH]
    counted: dict[str, int] = {}
    if last - window < first:
        counted = {c: int(n) for c, n in (await session.execute(
            select(entry.c.external_userid, func.sum(entry.c.amount))
            .where(*member, entry.c.at > last - window, entry.c.at <= first)
            .group_by(entry.c.external_userid))).all()}
        edges = or_(and_(entry.c.at > first - window, entry.c.at <= last - window),
                    and_(entry.c.at > first, entry.c.at <= last))
    else:
        edges = and_(entry.c.at > first - window, entry.c.at <= last)
    grown: dict[str, list[tuple[datetime, int]]] = defaultdict(list)
    for c, at, amount in (await session.execute(
            select(entry.c.external_userid, entry.c.at, entry.c.amount).where(*member, edges))).all():
        grown[c].append((at, int(amount)))
    return counted, grown


async def post(session: AsyncSession, rules: Membership, earnings: Iterable[Earning], *, tz: ZoneInfo,
               now: datetime, inbox: Inbox | None) -> Posted:
    """Write ``earnings`` (see the module's docstring) at ``now``; ``inbox`` gets each upgrade's event."""
    posted = Posted()
    wanted: dict[tuple[str, str], tuple[Earning, Behaviour]] = {}
    for e in sorted(earnings, key=lambda e: (e.at, e.source, e.external_userid)):
        b = rules.behaviour(e.behaviour)
        if b is not None:
            wanted.setdefault((e.source, e.external_userid), (e, b))
    if not wanted:
        return posted
    items = list(wanted.values())
    ids = sorted({e.external_userid for e, _ in items})
    accounts = await lock_accounts(session, ids, rules, items[0][0].at, tz, now=now)
    entry = table_of(MembershipEntry)
    seen = await already_posted(session, set(wanted))
    days = [e.at.astimezone(tz).date() for e, _ in items]
    daily: dict[tuple[str, str, date], int] = defaultdict(int)
    monthly: dict[tuple[str, str, date], int] = defaultdict(int)
    for c, b_name, day, n in (await session.execute(
            select(entry.c.external_userid, entry.c.behaviour, entry.c.day, func.count(entry.c.source.distinct()))
            .where(entry.c.external_userid.in_(ids), entry.c.reason == EARN,
                   entry.c.behaviour.in_(sorted({b.name for _, b in items})),
                   entry.c.day >= month_start(min(days)), entry.c.day <= month_end(max(days)))
            .group_by(entry.c.external_userid, entry.c.behaviour, entry.c.day))).all():
        daily[(c, b_name, day)] += int(n)
        monthly[(c, b_name, month_start(day))] += int(n)
    window = timedelta(days=rules.window_days)
    counted, grown = await growth_in_windows(session, ids, items[0][0].at, items[-1][0].at, window)
    rows: list[dict[str, Any]] = []
    changes: list[LevelChanged] = []
    touched: set[str] = set()
    for (e, b), day in zip(items, days, strict=True):
        c = e.external_userid
        if (e.source, c) in seen:
            posted.repeated += 1
            continue
        dk, mk = (c, b.name, day), (c, b.name, month_start(day))
        if (b.daily_cap and daily[dk] >= b.daily_cap) or (b.monthly_cap and monthly[mk] >= b.monthly_cap):
            posted.capped += 1
            continue
        daily[dk] += 1
        monthly[mk] += 1
        seen.add((e.source, c))
        acct = accounts[c]
        base = {"external_userid": c, "reason": EARN, "behaviour": b.name, "source": e.source, "at": e.at, "day": day}
        expires = rules.expiry.expires_at(e.at, tz)
        # Points already due when reported (a very late event) are never awarded: the nightly run
        # reads only points falling due after its last run. The growth still counts.
        if b.points and (expires is None or expires > now):
            rows.append({**base, "kind": POINTS, "amount": b.points, "expires_at": expires})
            acct["points"] += b.points
        if b.growth:
            rows.append({**base, "kind": GROWTH, "amount": b.growth, "expires_at": None})
            acct["growth"] += b.growth
            grown[c].append((e.at, b.growth))
        acct["updated_at"] = e.at
        touched.add(c)
        posted.entries += 1
        earned = counted.get(c, 0) + sum(a for at, a in grown[c] if e.at - window < at <= e.at)
        reach, now_rank = rules.reached(earned), rules.rank(acct["level"])
        if reach > now_rank:
            new = rules.levels[reach].name
            changes.append(LevelChanged(at=e.at, external_userid=c, previous=acct["level"], level=new, direction="up",
                                        cause=e.source, day=day.isoformat()))
            acct["level"], acct["level_since"] = new, day
    if rows:
        await session.execute(insert_ignore(dialect_of(session), entry, ["source", "external_userid", "kind"]), rows)
    await save_accounts(session, (accounts[c] for c in sorted(touched)))
    await record_changes(session, inbox, changes)
    posted.changes = changes
    return posted
