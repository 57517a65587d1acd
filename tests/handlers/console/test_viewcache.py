"""A cockpit view's whole result kept in the process (``handlers.console.viewcache``) changes
nothing but the time: a repeated view is the kept result (the same object) only while every input
holds — a day rolled up again (even at the same instant, or by another process), a change in the
staff directory, today's figures computed again, another process's entry, or the live cache
turned off each give a result computed again, with the new figures. Expected figures are counted
by hand from the hand-made roll-ups of ``test_periodcache``."""

from __future__ import annotations

import asyncio
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.console.cockpit import cockpit
from handlers.console.livecache import LiveCache, LiveReader
from handlers.console.models import ConsoleRollup, ConsoleRollupDay
from handlers.console.rollup import DayRollup, store
from handlers.console.viewcache import ViewCache
from handlers.contacts.api import Member
from tests.handlers.console.test_periodcache import ADMIN, D1, D2, NOW, TODAY, ZONE, bank


class Service:
    """One service process's caches (the page's: live days kept 60 s unless told, whole views)."""

    def __init__(self, live_s: int = 60) -> None:
        self.live = LiveCache(live_s)
        self.views = ViewCache()

    async def view(self, sessions: async_sessionmaker[AsyncSession], *, days: int = 7, dept: str = "",
                   now: datetime = NOW, today: date = TODAY) -> dict[str, Any]:
        async with sessions() as db, db.begin():  # as the page: its session commits (the audit row)
            return await cockpit(db, ADMIN, today=today, now=now, zone=ZONE, days=days, dept=dept,
                                 reader=LiveReader(self.live, "v1"), views=self.views)


def _added(data: dict[str, Any]) -> int:
    return int(data["figures"]["added"]["current"])


async def test_a_repeated_view_is_kept_until_a_day_is_rolled_up_again_even_at_the_same_instant(db_url: str) -> None:
    async with bank(db_url) as sessions:
        service = Service()
        first = await service.view(sessions)
        assert _added(first) == 2 + 1 + 4
        assert await service.view(sessions) is first  # nothing changed: the kept result itself

        # A stored figure changed behind the cockpit's back (no roll-up): still the kept result,
        # so the repeated view did not aggregate.
        async with sessions() as db, db.begin():
            await db.execute(update(ConsoleRollup).where(ConsoleRollup.day == D2, ConsoleRollup.metric == "added")
                             .values(value=40))
        assert await service.view(sessions) is first

        # The roll-up stores D1 again at the very instant it was first stored (NOW): rolled_at
        # is unchanged, yet the view shows the new figures (the marker went with the roll-up).
        async with sessions() as db, db.begin():
            await store(db, DayRollup(D1, {("b1", "added", "chan-y"): 5}), NOW)
        again = await service.view(sessions)
        assert _added(again) == 5 + 40
        assert again["figures"]["reach_customers"]["current"] == 2  # c1 (D2, D3), c3 (D2): c2 was on D1 only
        assert await service.view(sessions) is again

        # Another instance rolled D2 up again without clearing anything (its rolled_at moved).
        async with sessions() as db, db.begin():
            await db.execute(update(ConsoleRollup).where(ConsoleRollup.day == D2, ConsoleRollup.metric == "added")
                             .values(value=6))
            await db.execute(update(ConsoleRollupDay).where(ConsoleRollupDay.day == D2)
                             .values(rolled_at=NOW + timedelta(minutes=1)))
        assert _added(await service.view(sessions)) == 5 + 6


async def test_a_change_in_the_staff_directory_shows_at_once(db_url: str) -> None:
    async with bank(db_url) as sessions:
        service = Service()
        first = await service.view(sessions)
        assert {m["userid"]: m["name"] for m in first["managers"]} == {"a1": "A1", "a2": "A2", "b1": "B1"}
        async with sessions() as db, db.begin():
            await db.execute(update(Member).where(Member.userid == "a1").values(name="Renamed"))
        renamed = await service.view(sessions)
        assert {m["userid"]: m["name"] for m in renamed["managers"]}["a1"] == "Renamed"

        team = await service.view(sessions, dept="总行/甲队")  # a1, a2: added 2 (D1) + 4 (D2)
        assert _added(team) == 6
        async with sessions() as db, db.begin():  # b1 (added 1 on D1) joins the team
            await db.execute(update(Member).where(Member.userid == "b1").values(department="总行/甲队"))
        assert _added(await service.view(sessions, dept="总行/甲队")) == 7


async def test_todays_figures_computed_again_or_not_kept_give_a_new_result(db_url: str) -> None:
    async with bank(db_url) as sessions:
        service = Service(live_s=60)
        first = await service.view(sessions)
        assert await service.view(sessions, now=NOW + timedelta(seconds=59)) is first  # today kept
        later = await service.view(sessions, now=NOW + timedelta(seconds=60))  # today computed again
        assert later is not first and later == first  # (no raw rows today: the same figures)

        uncached = Service(live_s=0)  # live_cache_s = 0: today computed every view, nothing kept
        one = await uncached.view(sessions)
        assert await uncached.view(sessions) is not one


async def test_another_process_keeping_the_same_view_makes_this_one_compute_again(db_url: str) -> None:
    async with bank(db_url) as sessions:
        here, there = Service(), Service()
        mine = await here.view(sessions)
        theirs = await there.view(sessions)  # replaces the marker with its own
        assert theirs == mine
        assert await here.view(sessions) is not mine  # this entry can no longer be vouched for


async def test_each_scope_and_period_is_kept_apart(db_url: str) -> None:
    async with bank(db_url) as sessions:
        service = Service()
        bank7, team7, bank30 = (await service.view(sessions), await service.view(sessions, dept="总行/甲队"),
                                await service.view(sessions, days=30))
        assert (_added(bank7), _added(team7), _added(bank30)) == (7, 6, 7)
        assert bank30["period"]["days"] == 30 and bank7["period"]["days"] == 7
        assert await service.view(sessions, dept="总行/甲队") is team7
        # The next day the same period is other days: never the kept one.
        assert await service.view(sessions, today=TODAY + timedelta(days=1),
                                  now=NOW + timedelta(days=1)) is not bank7


async def test_concurrent_views_of_one_scope_compute_once(db_url: str) -> None:
    async with bank(db_url) as sessions:
        views, runs = ViewCache(), []

        async def compute() -> dict[str, Any]:
            runs.append(1)
            await asyncio.sleep(0.01)  # let the other views arrive while this one computes
            return {"run": len(runs)}

        async def one() -> dict[str, Any]:
            async with sessions() as db, db.begin():
                # The fingerprint given (as the pages give theirs, read beforehand): no database
                # read before the lock, so all five are queued on it while the first computes,
                # however slow the host (a read first made this depend on timing).
                got = await views.view(db, "k", [D1, D2], {TODAY: 1}, compute, fingerprint="days-as-read")
                await asyncio.sleep(0.05)  # as a page: its transaction (the marker) commits after rendering
                return got

        got = await asyncio.gather(*(one() for _ in range(5)))
        assert len(runs) == 1 and all(g is got[0] for g in got)
        assert await one() is got[0]  # later, vouched for by its (now committed) marker
        assert len(runs) == 1
