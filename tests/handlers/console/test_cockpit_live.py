"""The cockpit with days the nightly job has not rolled up: those days are computed from the raw
rows and joined to the stored ones — sums added, and a customer counted distinct (reached,
opened a link) both in a live and in a stored day, or by two managers of one team, counted once
at every level. The figures equal those of the same days once rolled up (at the same moment:
a past day's task figures are what its cards became by then)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy import delete

from handlers.console.cockpit import cockpit
from handlers.console.livecache import LiveCache, LiveReader
from handlers.console.models import ConsoleRollup, ConsoleRollupDay
from handlers.console.rollup import rebuild
from handlers.console.viewcache import ViewCache
from tests.handlers.console import cockpit_script as sc
from tests.handlers.console.support import console_stack
from tests.handlers.console.test_cockpit import ADMIN, VIEWS, ZONE, played


async def test_days_not_rolled_up_are_computed_and_counted_once(db_url: str, tmp_path: Path) -> None:
    async with console_stack(db_url, tmp_path) as s:
        events = await played(s)
        # Drop the stored roll-up of days in the current week, earlier in the month, and in the
        # previous periods: as if the nightly job had not run on them.
        missing = [sc.TODAY - timedelta(days=n) for n in (1, 2, 5, 12, 33, 40)]
        async with s.runtime.sessions() as db, db.begin():
            await db.execute(delete(ConsoleRollup).where(ConsoleRollup.day.in_(missing)))
            await db.execute(delete(ConsoleRollupDay).where(ConsoleRollupDay.day.in_(missing)))
        now = s.clock.now()
        async with s.runtime.sessions() as db:
            live = [await cockpit(db, ADMIN, days=days, today=sc.TODAY, now=now, zone=ZONE, dept=dept, manager=manager)
                    for days, dept, manager in VIEWS]
        # As the page computes them: the live days kept, the whole bank's lookup of who counted a
        # live day's customers already shared by every scope (viewcache) — the same figures.
        kept, views = LiveCache(60), ViewCache()
        for _ in range(2):  # computed, then kept
            async with s.runtime.sessions() as db, db.begin():
                shared = [await cockpit(db, ADMIN, days=days, today=sc.TODAY, now=now, zone=ZONE, dept=dept,
                                        manager=manager, reader=LiveReader(kept, "v"), views=views)
                          for days, dept, manager in VIEWS]
            assert shared == live
        async with s.runtime.sessions() as db, db.begin():
            for day in missing:
                await rebuild(db, day, ZONE, now)
        async with s.runtime.sessions() as db:
            for (days, dept, manager), got in zip(VIEWS, live, strict=True):
                stored = await cockpit(db, ADMIN, days=days, today=sc.TODAY, now=now, zone=ZONE, dept=dept,
                                       manager=manager)
                assert got == stored, (days, dept, manager)
                # Everything but what cards became since their day is the script's own figure.
                want = sc.expect(events, days=days, dept=dept, manager=manager)
                assert got["figures"]["reach_customers"] == want["figures"]["reach_customers"]
                assert got["figures"]["radar_openers"] == want["figures"]["radar_openers"]
                assert [m["reach_customers"] for m in got["managers"]] == [
                    m["reach_customers"] for m in want["managers"]]
