"""The nightly run's quick "anything due?" (both databases): it never says no when a full run
would lapse points or review someone — checked against a plain reading of random accounts and
entries — and on a quiet night after a full run it says no, so the run ends at its first chunk
without touching a row; the points that fall due later are lapsed all the same."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import async_sessionmaker

import scrm.main  # noqa: F401  (every feature's tables)
from handlers.crm.api import EVENT_KINDS
from handlers.membership.ledger import Earning, post
from handlers.membership.models import EARN, GROWTH, POINTS, MembershipAccount, MembershipEntry
from handlers.membership.nightly import anything_due, run_chunk
from handlers.membership.rules import Level, Membership, load_membership
from scrm.adapters.db.engine import make_engine, table_of

SH = ZoneInfo("Asia/Shanghai")
SOP = Path(__file__).resolve().parents[3] / "sop"
T0 = datetime(2026, 10, 1, tzinfo=UTC)
RULES = Membership(levels=(Level(name="new", label="新会员", growth=0, keep=0),
                           Level(name="ordinary", label="普通会员", growth=100, keep=50)),
                   review_months=3, window_days=365)


def account(ext: str, *, level: str = "ordinary", since: date = date(2026, 9, 1), reviewed: date | None = None,
            lapsed: datetime | None = None, points: int = 1000) -> dict[str, Any]:
    return {"external_userid": ext, "points": points, "growth": 500, "reserved": 0, "level": level,
            "level_since": since, "reviewed_on": reviewed, "lapsed_until": lapsed, "updated_at": T0}


def earning(ext: str, n: int, at: datetime, expires: datetime | None, kind: str = POINTS) -> dict[str, Any]:
    return {"external_userid": ext, "kind": kind, "amount": 10, "reason": EARN, "behaviour": "b",
            "source": f"crm:e{n}", "at": at, "day": at.date(), "expires_at": expires}


def plainly_due(accounts: list[dict[str, Any]], entries: list[dict[str, Any]], day: date, now: datetime) -> bool:
    """What a full run would find, member by member: points of theirs due after their own
    ``lapsed_until``, or a review of ``day``'s period they have not been through."""
    review = RULES.review_day(day)
    by_id = {a["external_userid"]: a for a in accounts}
    for a in accounts:
        if (a["reviewed_on"] is None or a["reviewed_on"] < review) and a["level_since"] < review:
            return True
    for e in entries:
        lapsed = by_id[e["external_userid"]]["lapsed_until"]
        if (e["kind"] == POINTS and e["expires_at"] is not None and e["expires_at"] <= now
                and (lapsed is None or e["expires_at"] > lapsed)):
            return True
    return False


async def test_anything_due_never_says_no_when_a_full_run_would_find_work(db_url: str) -> None:
    rng = random.Random(11)
    engine = make_engine(db_url)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    moments = [T0 + timedelta(days=d, hours=h) for d in range(0, 120, 9) for h in (0, 16)]
    answers = {True: 0, False: 0}
    try:
        for trial in range(40):
            accounts = [account(f"wm{trial:02d}{i}", reviewed=rng.choice((None, date(2026, 10, 1), date(2027, 1, 1))),
                                since=rng.choice((date(2026, 6, 1), date(2027, 1, 1))),
                                lapsed=rng.choice((None, *moments[4:10])))
                        for i in range(rng.randint(1, 4))]
            entries = [earning(rng.choice(accounts)["external_userid"], n, T0,
                               rng.choice((None, *moments)), kind=rng.choice((POINTS, GROWTH)))
                       for n in range(rng.randint(0, 5))]
            now = rng.choice(moments[6:])
            day = now.astimezone(SH).date()
            table, entry = table_of(MembershipAccount), table_of(MembershipEntry)
            async with sessions() as s, s.begin():
                await s.execute(table.delete())
                await s.execute(entry.delete())
                await s.execute(insert(table), accounts)
                if entries:
                    await s.execute(insert(entry), entries)
            async with sessions() as s:
                said = await anything_due(s, RULES, day=day, now=now)
            if plainly_due(accounts, entries, day, now):
                assert said, (accounts, entries, day, now)
            answers[said] += 1
        assert answers[True] > 5 and answers[False] > 5  # the random cases reach both answers
    finally:
        await engine.dispose()


async def test_a_quiet_night_ends_at_the_first_chunk_and_later_points_still_lapse(db_url: str) -> None:
    engine = make_engine(db_url)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    year_end = datetime(2027, 12, 31, 16, 0, tzinfo=UTC)  # 2028-01-01 00:00 in Shanghai
    accounts = [account(f"wm{i}", reviewed=date(2027, 1, 1), lapsed=None) for i in range(5)]
    entries = [earning(f"wm{i}", i, T0, T0 + timedelta(days=60)) for i in range(5)]
    entries += [earning(f"wm{i}", 10 + i, T0, year_end) for i in range(5)]
    table = table_of(MembershipAccount)

    async def run(day: date, now: datetime) -> tuple[int, int]:
        cursor: str | None = ""
        scanned = lapsed = 0
        while cursor is not None:
            async with sessions() as s, s.begin():
                chunk = await run_chunk(s, None, RULES, day=day, now=now, tz=SH, cursor=cursor, limit=2)
            cursor, scanned, lapsed = chunk.cursor, scanned + chunk.scanned, lapsed + chunk.lapsed
        return scanned, lapsed

    async def rows() -> list[tuple[Any, ...]]:
        async with sessions() as s:
            return [tuple(r) for r in (await s.execute(select(table).order_by(table.c.external_userid))).all()]

    try:
        async with sessions() as s, s.begin():
            await s.execute(insert(table), accounts)
            await s.execute(insert(table_of(MembershipEntry)), entries)
        # The first night after the first points fell due: every member gone over, 10 each lapsed.
        first = T0 + timedelta(days=61)
        assert await run(first.astimezone(SH).date(), first) == (5, 50)
        # Quiet nights: nothing due, the review of the quarter done — no member read, no row written.
        before = await rows()
        for n in range(1, 30):
            night = first + timedelta(days=n)
            async with sessions() as s:
                assert not await anything_due(s, RULES, day=night.astimezone(SH).date(), now=night)
            assert await run(night.astimezone(SH).date(), night) == (0, 0)
        assert await rows() == before
        # The next points fall due a year on (with the year's review): lapsed on that night.
        night = year_end + timedelta(hours=12)
        assert await run(night.astimezone(SH).date(), night) == (5, 50)
        async with sessions() as s:
            assert (await s.scalars(select(table.c.points))).all() == [1000 - 20] * 5
    finally:
        await engine.dispose()


async def test_a_lapse_already_written_is_never_taken_twice(db_url: str) -> None:
    """An account older than ``lapsed_until`` (none) whose lapse is in the ledger, and a run with an
    earlier clock after a later one: the points are taken once, the balance equals the ledger."""
    engine = make_engine(db_url)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    due = T0 + timedelta(days=60)
    later = due + timedelta(days=2)
    table, entry = table_of(MembershipAccount), table_of(MembershipEntry)
    old = account("wmOld", reviewed=date(2027, 1, 1), points=990)  # its lapse of 10 already written
    fresh = account("wmNew", reviewed=date(2027, 1, 1), points=1000)
    written = {**earning("wmOld", 99, due, None), "amount": -10, "reason": "expire",
               "source": f"expire:{due.isoformat()}", "behaviour": ""}

    async def night(now: datetime) -> int:
        async with sessions() as s, s.begin():
            chunk = await run_chunk(s, None, RULES, day=now.astimezone(SH).date(), now=now, tz=SH)
        assert chunk.cursor is None
        return chunk.lapsed

    try:
        async with sessions() as s, s.begin():
            await s.execute(insert(table), [old, fresh])
            await s.execute(insert(entry), [earning("wmOld", 1, T0, due), earning("wmNew", 2, T0, due), written])
        assert await night(later) == 10  # wmNew's only
        assert await night(due + timedelta(hours=1)) == 0  # an earlier clock: nothing again
        assert await night(later + timedelta(days=1)) == 0
        async with sessions() as s:
            balances = dict((await s.execute(select(table.c.external_userid, table.c.points))).all())
            lapses: dict[str, int] = dict((await s.execute(
                select(entry.c.external_userid, func.count())
                .where(entry.c.reason == "expire").group_by(entry.c.external_userid))).all())
            until = set((await s.scalars(select(table.c.lapsed_until))).all())
        assert balances == {"wmOld": 990, "wmNew": 990} and lapses == {"wmOld": 1, "wmNew": 1}
        # Not moved back by the earlier clock; the last night had nothing due and read no member.
        assert {u.replace(tzinfo=UTC) if u.tzinfo is None else u for u in until} == {later}
    finally:
        await engine.dispose()


async def test_a_new_member_joins_with_nothing_to_lapse_and_the_quiet_night_stays_quiet(db_url: str) -> None:
    """The ledger opens an account with its lapses written up to the posting moment (it awards
    nothing already due), so new members since the last run do not make a night look busy; their
    points still lapse when due."""
    rules = load_membership(SOP, EVENT_KINDS)
    engine = make_engine(db_url)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    posted_at = datetime(2027, 3, 10, 2, 0, tzinfo=UTC)
    behaviour = next(b.name for b in rules.behaviours if b.points > 0 and b.on.startswith("crm."))
    try:
        async with sessions() as s, s.begin():
            await post(s, rules, [Earning("wmJoined", behaviour, "crm:j1", posted_at - timedelta(hours=3))],
                       tz=SH, now=posted_at, inbox=None)
        async with sessions() as s:
            acct = (await s.execute(select(table_of(MembershipAccount)))).one()
            entries = (await s.execute(select(table_of(MembershipEntry))
                                       .where(table_of(MembershipEntry).c.kind == POINTS))).all()
        assert acct.lapsed_until.replace(tzinfo=UTC) == posted_at and acct.points > 0
        assert all(e.expires_at.replace(tzinfo=UTC) > posted_at for e in entries)
        night = posted_at + timedelta(days=1)
        async with sessions() as s:
            # The quarter's review (2027-04-01) is weeks away; nothing is due.
            assert not await anything_due(s, rules, day=night.astimezone(SH).date(), now=night)
        due = max(e.expires_at.replace(tzinfo=UTC) for e in entries) + timedelta(hours=1)
        async with sessions() as s:
            assert await anything_due(s, rules, day=due.astimezone(SH).date(), now=due)
    finally:
        await engine.dispose()
