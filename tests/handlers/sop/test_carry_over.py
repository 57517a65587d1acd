"""The manager's daily task limit: cards over it are carried over to the next workday with room
(holidays skipped), arrive that morning, count against that day's limit, and stay one per key."""

from __future__ import annotations

from datetime import date, time
from pathlib import Path

from sqlalchemy import func, select

from handlers.crm.api import CrmKeyEvent
from handlers.sop.engine import run_slot
from handlers.sop.models import SopTask
from scrm.kernel.models import OutboxAction
from tests.handlers.sop.seeding import ROUTERS, local, seed
from tests.support.playbooks import write_shipped_playbook
from tests.support.stack import Stack, stack

LIMIT = {"sop/policy.yaml": {"manager_daily_tasks: 30": "manager_daily_tasks: 2"}}
PATH = """\
path: callback
name: 回访任务
when: {}
steps:
  - {id: call, on: "added_at + 1 day", at: "10:00", task: t-task}
"""


async def counts(b: Stack) -> tuple[int, int]:
    async with b.runtime.sessions() as s:
        outbox = await s.scalar(select(func.count()).select_from(OutboxAction))
        tasks = await s.scalar(select(func.count()).select_from(SopTask))
    return int(outbox or 0), int(tasks or 0)


async def test_tasks_over_the_limit_wait_for_the_next_workday(db_url: str, tmp_path: Path) -> None:
    start = local("2026-09-30", "09:00")  # Wednesday before 国庆 (10-01..10-07)
    async with stack(db_url, tmp_path, start=start, demo=False, routers=ROUTERS,
                     playbook=write_shipped_playbook(tmp_path, paths={"callback": PATH}, edits=LIMIT)) as b:
        await seed(b, customers=["wm1", "wm2", "wm3"], added=local("2026-09-29", "15:00"))
        await seed(b, managers=(), customers=["wm4", "wm5"], added=local("2026-10-07", "15:00"))
        await b.run_until(local("2026-09-30", "10:05"))
        assert len(b.cards("zhangwei")) == 2
        (deferred,) = [t for t in await b.tasks() if t.status == "deferred"]
        assert deferred.day == date(2026, 10, 8)  # the first workday after the holiday
        assert deferred.detail["deferred"] == {"from": "2026-09-30",
                                               "reason": "manager_daily_tasks 2 reached for zhangwei"}
        (occ,) = await b.occurrences("deferred")
        assert occ.job_key == "sop:path:callback:call"
        assert occ.occurrence_key == f"{deferred.target}:2026-09-30:task"
        assert occ.reason == "manager_daily_tasks 2 reached for zhangwei; carried over to 2026-10-08"

        # A replay of the slot (second instance, restart) changes nothing.
        before = await counts(b)
        async with b.runtime.sessions() as s, s.begin():
            outcome = await run_slot(s, b.runtime.playbook.current, b.runtime.outbox, date(2026, 9, 30),
                                     time(10, 0), now=b.clock.now(), agent_id=1000002, scheduler=b.runtime.scheduler)
        assert outcome.total_sent() == 0 and outcome.deferred == 0
        assert await counts(b) == before and len(await b.occurrences("deferred")) == 1

        await b.run_until(local("2026-10-08", "08:59"))
        assert len(b.cards("zhangwei")) == 2
        await b.run_until(local("2026-10-08", "09:01"))
        assert len(b.cards("zhangwei")) == 3
        assert (await b.tasks())[2].status == "open"
        # That morning's carried card counts: of the day's two new tasks one goes, one waits.
        await b.run_until(local("2026-10-08", "10:05"))
        assert len(b.cards("zhangwei")) == 4
        waiting = [t for t in await b.tasks() if t.status == "deferred"]
        assert [(t.target, t.day) for t in waiting] in ([("wm5", date(2026, 10, 9))], [("wm4", date(2026, 10, 9))])
        await b.run_until(local("2026-10-09", "09:05"))
        assert len(b.cards("zhangwei")) == 5
        assert sorted(c.card["task_id"] for c in b.cards("zhangwei")) == sorted(t.task_id for t in await b.tasks())


async def test_reminder_cards_over_the_limit_are_carried_over_too(db_url: str, tmp_path: Path) -> None:
    start = local("2026-11-06", "14:00")  # a Friday
    async with stack(db_url, tmp_path, start=start, demo=False, routers=ROUTERS,
                     playbook=write_shipped_playbook(tmp_path, edits=LIMIT)) as b:
        await seed(b, customers=["wmRich"])
        async with b.runtime.sessions() as s, s.begin():
            for n in (1, 2, 3):
                await b.runtime.inbox.add_internal(s, CrmKeyEvent(
                    at=start, event_id=f"e{n}", crm_id="crm-wmRich", event_kind="large_transfer", occurred_at=start,
                    details={"amount": 700000.0}), f"crm:e{n}")
        await b.step()
        assert len(b.cards("zhangwei")) == 2
        (occ,) = await b.occurrences("deferred")
        assert occ.job_key == "reminder:large-transfer"
        assert occ.reason == "manager_daily_tasks 2 reached for zhangwei; carried over to 2026-11-09"
        await b.run_until(local("2026-11-09", "08:55"))
        assert len(b.cards("zhangwei")) == 2  # not over the weekend
        assert len(b.texts_to("lead1")) == 2  # the two sent cards escalated on Saturday
        await b.run_until(local("2026-11-09", "09:01"))
        assert len(b.cards("zhangwei")) == 3
        # Its escalation counts from when it arrived, not from Friday.
        await b.run_until(local("2026-11-10", "08:55"))
        assert len(b.texts_to("lead1")) == 2
        await b.run_until(local("2026-11-10", "09:05"))
        assert len(b.texts_to("lead1")) == 3
