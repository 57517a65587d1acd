"""Today's live cockpit figures kept a short while (``[console] live_cache_s``): within the
window a view shows the figures as of when they were computed ("截至 HH:MM"), even though rows
changed since; after it, fresh ones. 0 turns it off. A playbook reload, another bank date or a
clock set back never serves what was kept; concurrent views compute once."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from handlers.console.livecache import LiveCache, LiveKey, LiveReader
from handlers.contacts.api import Customer, Follow
from tests.handlers.console.support import console_stack, sign_in
from tests.support.stack import Stack

SHANGHAI = ZoneInfo("Asia/Shanghai")


async def _added_today(s: Stack) -> tuple[int, str]:
    """The 7-day cockpit's "新增客户" of the whole bank, and its "截至" time."""
    page = await (await s.client.get("/console/cockpit?days=7")).text()
    added = re.search(r'<tr data-figure="added"><td>[^<]*</td><td data-period="current">(\d+)</td>', page)
    as_of = re.search(r'<p class="as-of" id="as-of">今日数据截至 (\d\d:\d\d)', page)
    assert added is not None and as_of is not None, page[:2000]
    return int(added.group(1)), as_of.group(1)


async def _add_relation(s: Stack, n: int) -> None:
    """A new customer relation of a demo manager, made a second ago (today, not rolled up)."""
    at = s.clock.now() - timedelta(seconds=1)
    async with s.runtime.sessions() as db, db.begin():
        db.add(Customer(external_userid=f"wmLIVE{n:04d}", name=f"客户{n}", updated_at=at))
        db.add(Follow(userid="wangqiang", external_userid=f"wmLIVE{n:04d}", state="", add_way=1, created_at=at,
                      status="active", status_at=at))


def _hhmm(at: datetime) -> str:
    return at.astimezone(SHANGHAI).strftime("%H:%M")


async def test_the_page_keeps_today_for_the_window_then_computes_it_again(db_url: str, tmp_path: Path) -> None:
    async with console_stack(db_url, tmp_path, console={"live_cache_s": 60}) as s:
        s.clock.set(datetime(2026, 12, 1, 2, 0, 5, tzinfo=UTC))  # 10:00:05 in the bank
        assert (await sign_in(s, "zhouhai")).status in (302, 303)
        first_at = s.clock.now()
        before, as_of = await _added_today(s)
        assert as_of == _hhmm(first_at) == "10:00"

        await _add_relation(s, 1)
        s.clock.advance(seconds=59)  # still within the window: the same figures, the same "as of"
        assert await _added_today(s) == (before, "10:00")

        s.clock.advance(seconds=1)  # 60 s after they were computed: computed again
        assert await _added_today(s) == (before + 1, _hhmm(s.clock.now()))
        assert _hhmm(s.clock.now()) == "10:01"


async def test_zero_turns_it_off(db_url: str, tmp_path: Path) -> None:
    async with console_stack(db_url, tmp_path, console={"live_cache_s": 0}) as s:
        assert (await sign_in(s, "zhouhai")).status in (302, 303)
        before, _ = await _added_today(s)
        await _add_relation(s, 1)
        await _add_relation(s, 2)
        assert await _added_today(s) == (before + 2, _hhmm(s.clock.now()))


# -- the cache's keys, without the service -------------------------------------------------

T0 = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
TODAY = date(2026, 12, 1)


class Counter:
    """A computation that says how many times it ran (its figures are that number)."""

    def __init__(self) -> None:
        self.runs = 0

    async def __call__(self) -> dict[tuple[str, str, str], int]:
        self.runs += 1
        await asyncio.sleep(0)  # let concurrent callers interleave
        return {("u", "added", ""): self.runs}


def _key(**change: Any) -> LiveKey:
    return LiveKey(**{"playbook": "v1", "zone": "Asia/Shanghai", "day": TODAY, "today": TODAY, **change})


async def test_a_reload_another_date_or_a_clock_set_back_computes_again() -> None:
    cache, compute = LiveCache(60), Counter()
    assert (await cache.day(_key(), T0, compute)).value == {("u", "added", ""): 1}
    assert (await cache.day(_key(), T0 + timedelta(seconds=30), compute)).at == T0  # kept
    assert compute.runs == 1
    await cache.day(_key(playbook="v2"), T0 + timedelta(seconds=31), compute)  # the playbook reloaded
    assert compute.runs == 2
    # The same date seen the next day is a past day now: never the partial figures kept as today.
    await cache.day(_key(today=TODAY + timedelta(days=1)), T0 + timedelta(seconds=32), compute)
    assert compute.runs == 3
    await cache.day(_key(playbook="v2"), T0 - timedelta(seconds=1), compute)  # the clock went back
    assert compute.runs == 4


async def test_concurrent_views_compute_once_and_readers_record_today() -> None:
    cache, compute = LiveCache(60), Counter()
    readers = [LiveReader(cache, "v1") for _ in range(5)]
    got = await asyncio.gather(*(r.day(TODAY, TODAY, T0, "Asia/Shanghai", compute) for r in readers))
    assert compute.runs == 1 and all(g == {("u", "added", ""): 1} for g in got)
    assert all(r.as_of == T0 for r in readers)
    past = LiveReader(cache, "v1")  # a past day does not say when "today" was computed
    await past.day(TODAY - timedelta(days=1), TODAY, T0, "Asia/Shanghai", compute)
    assert past.as_of is None
    uncached = LiveReader()  # reports: computed every time, as of now
    await uncached.day(TODAY, TODAY, T0 + timedelta(seconds=5), "Asia/Shanghai", compute)
    await uncached.day(TODAY, TODAY, T0 + timedelta(seconds=5), "Asia/Shanghai", compute)
    assert compute.runs == 4 and uncached.as_of == T0 + timedelta(seconds=5)
