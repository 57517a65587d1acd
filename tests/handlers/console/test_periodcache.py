"""The cockpit's cache of stored periods (``console_period_cache``) changes nothing but the time:
a second view reads the kept figures; a day rolled up again (stored through the roll-up, or by
an instance that did not clear the cache: its ``rolled_at`` moved) is never served from them;
the nightly warm-up leaves the whole bank's standard periods ready. Figures are hand-made roll-up
rows here, so every expected number is counted in the test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.console.access import Grant, Role
from handlers.console.cockpit import cockpit
from handlers.console.jobs import warm_cockpit
from handlers.console.models import ConsolePeriodCache, ConsoleRollup, ConsoleRollupDay
from handlers.console.rollup import DayRollup, store
from handlers.contacts.api import Member
from scrm.adapters.db.engine import make_engine, make_sessionmaker

ZONE = "Asia/Shanghai"
TODAY = date(2026, 11, 20)
NOW = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
ADMIN = Grant("ops", Role.OPS_ADMIN)
TEAMS = {"a1": "总行/甲队", "a2": "总行/甲队", "b1": "总行/乙队"}

# Hand-made roll-ups of three stored days (userid, metric, key) → value.
D1, D2, D3 = (TODAY - timedelta(days=n) for n in (3, 2, 1))
DAYS: dict[date, dict[tuple[str, str, str], int]] = {
    D1: {("a1", "added", "chan-x"): 2, ("b1", "added", "chan-y"): 1, ("a1", "reach_customer", "c1"): 1,
         ("a2", "reach_customer", "c1"): 1, ("b1", "reach_customer", "c2"): 1},
    D2: {("a2", "added", "chan-x"): 4, ("a1", "reach_customer", "c1"): 1, ("a1", "reach_customer", "c3"): 1},
    D3: {("b1", "lost", "chan-y"): 1, ("b1", "reach_customer", "c1"): 1},
}


@asynccontextmanager
async def bank(db_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = make_engine(db_url)
    sessions = make_sessionmaker(engine)
    try:
        async with sessions() as db, db.begin():
            db.add_all(Member(userid=u, name=u.upper(), department=d) for u, d in TEAMS.items())
            for day, values in DAYS.items():
                await store(db, DayRollup(day, dict(values)), NOW)
        yield sessions
    finally:
        await engine.dispose()


async def view(sessions: async_sessionmaker[AsyncSession], days: int = 7, dept: str = "") -> dict[str, Any]:
    async with sessions() as db, db.begin():  # as the page: its session commits (the audit row)
        return await cockpit(db, ADMIN, today=TODAY, now=NOW, zone=ZONE, days=days, dept=dept)


async def kept(sessions: async_sessionmaker[AsyncSession]) -> int:
    async with sessions() as db:
        return int(await db.scalar(select(func.count()).select_from(ConsolePeriodCache)) or 0)


def _added(data: dict[str, Any]) -> int:
    return int(data["figures"]["added"]["current"])


async def test_a_second_view_reads_the_kept_figures_until_a_day_is_rolled_up_again(db_url: str) -> None:
    async with bank(db_url) as sessions:
        first = await view(sessions)
        # Counted by hand from DAYS: added 2 + 1 + 4; lost 1; customers reached c1, c2, c3.
        assert _added(first) == 7
        assert first["figures"]["lost"]["current"] == 1
        assert first["figures"]["reach_customers"]["current"] == 3
        ranked = {m["userid"]: m["reach_customers"] for m in first["managers"]}
        assert ranked == {"a1": 2, "a2": 1, "b1": 2}  # a1: c1, c3; a2: c1; b1: c2, c1
        assert {t["department"]: t["reach_customers"] for t in first["teams"]} == {"总行": 3}
        assert await kept(sessions) > 0

        # Change a stored figure behind the cockpit's back (no roll-up, no new rolled_at): the
        # second view still shows the kept figures — so it did not aggregate again.
        async with sessions() as db, db.begin():
            await db.execute(update(ConsoleRollup).where(ConsoleRollup.day == D2, ConsoleRollup.metric == "added")
                             .values(value=40))
        assert await view(sessions) == first

        # Another instance rolled D2 up again (rolled_at moved, the cache was not cleared): the
        # kept figures are not used.
        async with sessions() as db, db.begin():
            await db.execute(update(ConsoleRollupDay).where(ConsoleRollupDay.day == D2)
                             .values(rolled_at=NOW + timedelta(minutes=1)))
        assert _added(await view(sessions)) == 2 + 1 + 40

        # The roll-up stores D1 again, at the same instant as before: the rows covering D1 go.
        async with sessions() as db, db.begin():
            await store(db, DayRollup(D1, {("b1", "added", "chan-y"): 5}), NOW + timedelta(minutes=1))
            left = await db.scalar(select(func.count()).select_from(ConsolePeriodCache)
                                   .where(ConsolePeriodCache.first <= D1, ConsolePeriodCache.last >= D1))
            assert left == 0
        again = await view(sessions)
        assert _added(again) == 5 + 40
        assert again["figures"]["reach_customers"]["current"] == 2  # c1 (D2, D3), c3 (D2); c2 was only on D1


async def test_the_nightly_warm_up_keeps_the_whole_banks_periods_and_nothing_else(db_url: str) -> None:
    async with bank(db_url) as sessions:
        await view(sessions, days=30, dept="总行/甲队")  # a team's view: emptied by the warm-up
        async with sessions() as db, db.begin():
            await warm_cockpit(db, TODAY)
        async with sessions() as db:
            rows = (await db.execute(select(ConsolePeriodCache.first, ConsolePeriodCache.last))).all()
        # What depends only on the stored days is kept once: the current 7, 30 and 90 days all hold
        # D1–D3 (one entry of the period's figures, one of the daily series); the previous periods
        # hold no stored day (nothing to keep).
        assert sorted(rows) == [(D1, D3), (D1, D3)]
        for days in (7, 30, 90):
            assert _added(await view(sessions, days=days)) == 7
        assert await kept(sessions) == 2  # every view found its figures
        await view(sessions, days=30, dept="总行/甲队")
        assert await kept(sessions) == 4  # the team's were emptied by the warm-up: made again


async def test_the_warm_up_also_keeps_each_scope_of_the_access_file(db_url: str) -> None:
    async with bank(db_url) as sessions:
        cold = await view(sessions, days=30, dept="总行/甲队")  # computed by the view itself
        async with sessions() as db, db.begin():
            # A team lead's scope, the bank's again (ops admins), and a scope nobody is in: skipped.
            await warm_cockpit(db, TODAY, ["总行/甲队", "", "总行/无此团队"])
        assert await kept(sessions) == 4  # the bank's two entries and the team's two
        for days in (7, 30, 90):
            await view(sessions, days=days, dept="总行/甲队")
            await view(sessions, days=days)
        assert await kept(sessions) == 4  # every view found its figures: nothing new was made
        assert await view(sessions, days=30, dept="总行/甲队") == cold  # and they are the same
