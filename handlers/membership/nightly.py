"""One chunk of the nightly run: lapse the points the expiry rule says are due, and on a review
day move down the members whose recent growth no longer keeps their level.

Lapse: for each member and each moment earned points fell due (``expires_at`` ≤ now), one
``expire`` entry of minus what was earned with that due moment (never more than the balance),
sourced ``expire:<moment>`` — so a second run, or a replay, finds it and adds nothing. Old
entries are never touched.

Review (first day of each ``review.every`` period, local; a run that missed that day — the
service was down — does it the next night, judged as of the review day all the same): a member
whose growth earned in the ``window_days`` before the day's start is below their level's
``keep`` goes down, one level at a time while still below, at most ``review.max_steps`` levels;
caused ``review:<day>``; each member is reviewed once per review day (``reviewed_on``) however
often the chunk runs, and a level set on or after the review day is not reviewed.

``lapsed_until`` on the account marks how far lapses are written, so a night reads only the
points that fell due since the last run (the ledger never awards points already due when posted,
so nothing falls due behind it; a new member's points fall due after the last run too).

Members are read in id order (keyset), ``limit`` at a time. Most nights nothing is due — points
fall due a few moments a year, reviews come quarterly — so the first chunk first asks the tables
whether anything is (:func:`anything_due`, a few index reads) and, if not, ends the run there
instead of going over every member to find nothing (35 s of CPU for 1,000,000 on SQLite).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from scrm.adapters.db.engine import dialect_of, insert_ignore, table_of
from scrm.kernel.inbox import Inbox

from .events import LevelChanged
from .ledger import already_posted, record_changes, save_accounts
from .models import EARN, EXPIRE, GROWTH, POINTS, MembershipAccount, MembershipEntry
from .rules import Membership

DEFAULT_CHUNK = 2000


@dataclass
class Chunk:
    """What one chunk did: the next cursor (None at the end), and counts for the log."""

    cursor: str | None
    scanned: int = 0
    lapsed: int = 0  # points taken away
    changes: list[LevelChanged] = field(default_factory=list)


def expire_source(due: datetime) -> str:
    return f"expire:{due.astimezone(UTC).isoformat()}"


async def next_accounts(session: AsyncSession, after: str, limit: int) -> dict[str, dict[str, Any]]:
    """The ``limit`` account rows after ``after`` in id order (the database's: the dict keeps it),
    locked (PostgreSQL; SQLite has one writer) in that order, as the ledger locks them."""
    table = table_of(MembershipAccount)
    rows = await session.execute(select(table).where(table.c.external_userid > after)
                                 .order_by(table.c.external_userid).limit(limit).with_for_update())
    return {r.external_userid: dict(r._mapping) for r in rows.all()}


def _members(column: Any, accounts: dict[str, dict[str, Any]], after: str) -> Any:
    """The chunk's members as an id range (the chunk holds every account in it): one index range
    read instead of an IN list of a few thousand ids, each a bound parameter."""
    return and_(column > after, column <= next(reversed(accounts)))  # the last in the database's order


async def lapse(session: AsyncSession, accounts: dict[str, dict[str, Any]], now: datetime, tz: ZoneInfo,
                after: str) -> int:
    """Write the due ``expire`` entries of these members (every account after ``after`` up to the
    last of them); returns the points taken away."""
    entry = table_of(MembershipEntry)
    until = {c: a["lapsed_until"] for c, a in accounts.items()}
    since = min((u for u in until.values() if u is not None), default=None)
    for a in accounts.values():
        # Never back: a run with an earlier clock must not make written lapses look unwritten.
        a["lapsed_until"] = now if a["lapsed_until"] is None else max(a["lapsed_until"], now)
    cond = [entry.c.expires_at > since] if since is not None else []
    due = (await session.execute(
        select(entry.c.external_userid, entry.c.expires_at, func.sum(entry.c.amount))
        .where(_members(entry.c.external_userid, accounts, after), entry.c.kind == POINTS, entry.c.reason == EARN,
               entry.c.expires_at.is_not(None), entry.c.expires_at <= now, *cond)
        .group_by(entry.c.external_userid, entry.c.expires_at)
        .order_by(entry.c.external_userid, entry.c.expires_at))).all()
    if not due:
        return 0
    # A lapse is written with its member's ``lapsed_until`` moved past it, in one transaction, so
    # only a moment at or before a member's own ``lapsed_until`` (the chunk reads from the earliest
    # of them), or any of a member with none (an account older than the column), can have been
    # written already: only those are looked up — none on an ordinary night, which spared the
    # new-year night of 1,000,000 members half its time. Looked up pair by pair on the unique
    # index: not by member (a member's whole history is not read nightly), nor by source (on
    # PostgreSQL that read every member's lapse of the moment, chunk after chunk: quadratic).
    maybe = {(expire_source(at), c) for c, at, _ in due if c in until and (until[c] is None or at <= until[c])}
    done = {(c, s) for s, c in await already_posted(session, maybe)} if maybe else set()
    rows: list[dict[str, Any]] = []
    taken = 0
    sources: dict[datetime, str] = {}  # most members' points fall due at the same few moments
    for c, at, earned in due:
        source = sources.get(at) or sources.setdefault(at, expire_source(at))
        acct = accounts.get(c)
        if acct is None:  # an account created in the range since the chunk read it: next night
            continue
        amount = min(int(earned), acct["points"])
        if (c, source) in done or amount <= 0:
            continue
        acct["points"] -= amount
        acct["updated_at"] = now
        taken += amount
        rows.append({"external_userid": c, "kind": POINTS, "amount": -amount, "reason": EXPIRE, "behaviour": "",
                     "source": source, "at": at, "day": at.astimezone(tz).date(), "expires_at": None})
    if rows:
        await session.execute(insert_ignore(dialect_of(session), entry, ["source", "external_userid", "kind"]), rows)
    return taken


def review_start(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tz).astimezone(UTC)


async def review(session: AsyncSession, rules: Membership, accounts: dict[str, dict[str, Any]], day: date,
                 tz: ZoneInfo, after: str) -> list[LevelChanged]:
    """Move down the members below their level's ``keep`` at the review of ``day`` (see the
    module's docstring); members already reviewed for it are left alone."""
    cause = f"review:{day.isoformat()}"
    # A level set on or after the review day (reached after midnight, before this run) was
    # earned on growth the review's window does not see: not reviewed.
    ids = sorted(c for c, a in accounts.items()
                 if (a["reviewed_on"] is None or a["reviewed_on"] < day) and a["level_since"] < day)
    if not ids:
        return []
    start = review_start(day, tz)
    entry = table_of(MembershipEntry)
    recent: dict[str, int] = {c: int(n) for c, n in (await session.execute(
        select(entry.c.external_userid, func.sum(entry.c.amount))
        .where(_members(entry.c.external_userid, accounts, after), entry.c.kind == GROWTH,
               entry.c.at > start - timedelta(days=rules.window_days), entry.c.at <= start)
        .group_by(entry.c.external_userid))).all()}
    changes: list[LevelChanged] = []
    for c in ids:
        acct = accounts[c]
        acct["reviewed_on"] = day
        earned = recent.get(c, 0)
        rank = target = rules.rank(acct["level"])
        while target > 0 and earned < rules.levels[target].keep and rank - target < rules.max_steps:
            target -= 1
        if target == rank:
            continue
        new = rules.levels[target].name
        changes.append(LevelChanged(at=start, external_userid=c, previous=acct["level"], level=new, direction="down",
                                    cause=cause, day=day.isoformat()))
        acct["level"], acct["level_since"], acct["updated_at"] = new, day, start
    return changes


async def anything_due(session: AsyncSession, rules: Membership, *, day: date, now: datetime) -> bool:
    """Whether a run on ``day`` at ``now`` would lapse any points or review anyone; conservative
    (a yes may still find nothing), never a no when something is due."""
    acct, entry = table_of(MembershipAccount), table_of(MembershipEntry)
    review = rules.review_day(day)
    unreviewed = select(exists().where(or_(acct.c.reviewed_on.is_(None), acct.c.reviewed_on < review),
                                       acct.c.level_since < review))
    if await session.scalar(unreviewed):
        return True
    due = (entry.c.kind == POINTS, entry.c.reason == EARN, entry.c.expires_at.is_not(None),
           entry.c.expires_at <= now)
    # Every member's lapses are written up to their ``lapsed_until``, so anything newly due lies
    # after the earliest of them: a range of the due index that is empty on a quiet night.
    floor = await session.scalar(select(func.min(acct.c.lapsed_until)))
    if floor is not None and await session.scalar(select(exists().where(*due, entry.c.expires_at > floor))):
        return True
    # Accounts from before ``lapsed_until`` was kept (new ones start with it): any of their points
    # due at all. Asked only when there are such accounts, so a quiet night never walks the ledger.
    if not await session.scalar(select(exists().where(acct.c.lapsed_until.is_(None)))):
        return False
    never = select(acct.c.external_userid).where(acct.c.lapsed_until.is_(None))
    return bool(await session.scalar(select(exists().where(entry.c.external_userid.in_(never), *due))))


async def run_chunk(session: AsyncSession, inbox: Inbox | None, rules: Membership, *, day: date, now: datetime,
                    tz: ZoneInfo, cursor: str = "", limit: int = DEFAULT_CHUNK) -> Chunk:
    """Lapse and review (once per review day) the ``limit`` members after ``cursor``, in the caller's
    transaction; ``inbox`` gets a :class:`LevelChanged` per move down. The first chunk (no
    ``cursor``) ends the run at once when :func:`anything_due` says nothing is."""
    if not cursor and not await anything_due(session, rules, day=day, now=now):
        return Chunk(cursor=None)
    accounts = await next_accounts(session, cursor, limit)
    if not accounts:
        return Chunk(cursor=None)
    before = {c: dict(a) for c, a in accounts.items()}
    chunk = Chunk(cursor=next(reversed(accounts)) if len(accounts) == limit else None, scanned=len(accounts))
    chunk.lapsed = await lapse(session, accounts, now, tz, cursor)
    chunk.changes = await review(session, rules, accounts, rules.review_day(day), tz, cursor)
    await save_accounts(session, (a for c, a in accounts.items() if a != before[c]))
    await record_changes(session, inbox, chunk.changes)
    return chunk

