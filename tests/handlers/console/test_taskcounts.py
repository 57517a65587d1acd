"""The task counts of the tasks and home pages are the whole bank's per manager, kept a short
while (``[console] live_cache_s``): within the window a view shows the counts as of when they
were computed ("截至 HH:MM"), even though cards changed since; after it, fresh ones; 0 turns it
off. Each viewer sees only their scope's part of the kept counts (``test_http``). Expected
counts are made here from the cards written."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from handlers.sop.api import SopTask
from tests.handlers.console.support import console_stack, sign_in
from tests.support.stack import Stack

SHANGHAI = ZoneInfo("Asia/Shanghai")


async def _card(s: Stack, n: int, userid: str, status: str, days_ago: int) -> None:
    today = s.clock.now().astimezone(SHANGHAI).date()
    async with s.runtime.sessions() as db, db.begin():
        db.add(SopTask(task_id=f"tc{n}", key=f"tc{n}", userid=userid, source="reminder:test", title="t",
                       day=today - timedelta(days=days_ago), status=status, created_at=s.clock.now()))


async def _home(s: Stack) -> tuple[int, int, str]:
    page = await (await s.client.get("/console/")).text()
    open_ = re.search(r'id="open-tasks">(\d+)<', page)
    overdue = re.search(r'id="overdue-tasks">(\d+)<', page)
    as_of = re.search(r'id="as-of">任务数截至 (\d\d:\d\d)<', page)
    assert open_ and overdue and as_of, page[:2000]
    return int(open_.group(1)), int(overdue.group(1)), as_of.group(1)


async def _tasks(s: Stack) -> tuple[int, int, str]:
    page = await (await s.client.get("/console/tasks?days=7")).text()
    totals = dict(re.findall(r'data-total="(\w+)">(\d+)<', page))
    as_of = re.search(r'id="as-of">数据截至 (\d\d:\d\d)<', page)
    assert as_of, page[:2000]
    return int(totals["issued"]), int(totals["overdue"]), as_of.group(1)


async def test_the_pages_keep_the_counts_for_the_window_then_count_again(db_url: str, tmp_path: Path) -> None:
    async with console_stack(db_url, tmp_path, console={"live_cache_s": 60}) as s:
        s.clock.set(datetime(2026, 12, 1, 2, 0, 5, tzinfo=UTC))  # 10:00:05 in the bank
        assert (await sign_in(s, "zhouhai")).status in (302, 303)
        await _card(s, 1, "zhangwei", "open", 2)
        await _card(s, 2, "gaofei", "done", 1)
        assert await _home(s) == (1, 1, "10:00")
        assert await _tasks(s) == (2, 1, "10:00")

        await _card(s, 3, "lina", "open", 0)  # open, due today: not overdue
        s.clock.advance(seconds=59)  # within the window: the counts as they were
        assert await _home(s) == (1, 1, "10:00")
        assert await _tasks(s) == (2, 1, "10:00")

        s.clock.advance(seconds=1)  # 60 s after: counted again
        assert await _home(s) == (2, 1, "10:01")
        assert await _tasks(s) == (3, 1, "10:01")


async def test_live_cache_s_zero_counts_at_every_view(db_url: str, tmp_path: Path) -> None:
    async with console_stack(db_url, tmp_path, console={"live_cache_s": 0}) as s:
        assert (await sign_in(s, "zhouhai")).status in (302, 303)
        await _card(s, 1, "zhangwei", "open", 2)
        first = await _home(s)
        await _card(s, 2, "zhangwei", "snoozed", 0)
        assert (await _home(s))[:2] == (first[0] + 1, first[1])
        assert (await _tasks(s))[:2] == (2, 1)
