"""Quiet hours (21:00-08:30 in the shipped policy): nothing reaches a customer or a manager in
them, even when a slot runs late into them; every skip says why."""

from __future__ import annotations

from pathlib import Path

from handlers.crm.api import CrmKeyEvent
from tests.handlers.sop.seeding import ROUTERS, local, seed
from tests.support.playbooks import write_shipped_playbook
from tests.support.stack import Stack, stack

START = local("2026-11-02", "09:00")  # a Monday
CHAT = "wrEveningChat"
CALENDAR = """\
calendar: evening
name: 晚间推送
group_type: regional
misfire_grace: 3h
steps:
  - {id: evening-post, day: 0, at: "20:30", send: t-text}
  - {id: evening-task, day: 0, at: "20:30", task: t-task}
"""


async def late_slot(b: Stack, hhmm: str) -> None:
    """The 20:30 slot's job is picked up late (the service was busy or restarting)."""
    await seed(b, groups=[(CHAT, "regional", START)])
    await b.run_until(local("2026-11-02", "20:00"))
    b.clock.set(local("2026-11-02", hhmm))
    await b.step()


async def test_a_slot_run_late_into_quiet_hours_sends_nothing(db_url: str, tmp_path: Path) -> None:
    async with stack(db_url, tmp_path, start=START, demo=False, routers=ROUTERS,
                     playbook=write_shipped_playbook(tmp_path, calendars={"evening": CALENDAR})) as b:
        await late_slot(b, "21:15")
        assert await b.outbox_rows("externalcontact/add_msg_template") == []
        assert b.calls("externalcontact/add_msg_template") == [] and b.cards("zhangwei") == []
        skipped = {(o.job_key, o.reason) for o in await b.occurrences("skipped")}
        assert skipped == {("sop:calendar:evening:evening-post",
                            "quiet hours 21:00-08:30: slot 20:30 ran late at 21:15")}
        # The manager's task is not lost: it waits for the next workday morning.
        (deferred,) = await b.occurrences("deferred")
        assert deferred.job_key == "sop:calendar:evening:evening-task"
        assert deferred.reason == ("quiet hours 21:00-08:30: slot 20:30 ran late at 21:15; "
                                   "carried over to 2026-11-03")
        await b.run_until(local("2026-11-03", "09:05"))
        (card,) = b.cards("zhangwei")
        assert card.card["sub_title_text"] == "请回访这位客户，了解近期资金安排。"
        assert b.calls("externalcontact/add_msg_template") == []  # the post's moment has passed


async def test_the_same_slot_a_little_late_but_before_quiet_hours_goes(db_url: str, tmp_path: Path) -> None:
    async with stack(db_url, tmp_path, start=START, demo=False, routers=ROUTERS,
                     playbook=write_shipped_playbook(tmp_path, calendars={"evening": CALENDAR})) as b:
        await late_slot(b, "20:50")
        assert len(b.calls("externalcontact/add_msg_template")) == 1 and len(b.cards("zhangwei")) == 1
        assert await b.occurrences("skipped") == []


async def test_a_crm_event_in_quiet_hours_reaches_the_manager_after_them(db_url: str, tmp_path: Path) -> None:
    async with stack(db_url, tmp_path, start=START, demo=False, routers=ROUTERS,
                     playbook=write_shipped_playbook(tmp_path)) as b:
        await seed(b, customers=["wmNight"])
        b.clock.set(local("2026-11-02", "23:40"))
        event = CrmKeyEvent(at=b.clock.now(), event_id="n1", crm_id="crm-wmNight", event_kind="large_transfer",
                            occurred_at=b.clock.now(), details={"amount": 600000.0})
        async with b.runtime.sessions() as s, s.begin():
            await b.runtime.inbox.add_internal(s, event, "crm:n1")
        await b.run_until(local("2026-11-03", "08:29"))
        assert b.cards("zhangwei") == []
        await b.run_until(local("2026-11-03", "08:31"))
        assert len(b.cards("zhangwei")) == 1


async def test_a_dated_reminder_that_fires_in_quiet_hours_waits_for_the_morning(db_url: str,
                                                                                tmp_path: Path) -> None:
    async with stack(db_url, tmp_path, start=START, demo=False, routers=ROUTERS,
                     playbook=write_shipped_playbook(tmp_path)) as b:
        await seed(b, customers=["wmMature"], crm={"wmMature": {"name": "李先生"}})
        event = CrmKeyEvent(at=b.clock.now(), event_id="m1", crm_id="crm-wmMature", event_kind="maturity",
                            occurred_at=b.clock.now(),
                            details={"maturity_date": "2026-11-12", "product_name": "稳享90天", "amount": 50000.0})
        async with b.runtime.sessions() as s, s.begin():
            await b.runtime.inbox.add_internal(s, event, "crm:m1")
        await b.step()
        b.clock.set(local("2026-11-05", "22:00"))  # its 09:00 job ran late (the service was down all day)
        await b.step()
        assert b.cards("zhangwei") == []
        assert (await b.runtime.reload_playbook()).applied  # a reload in the night keeps the waiting job
        await b.run_until(local("2026-11-06", "08:31"))
        (card,) = b.cards("zhangwei")
        assert "李先生 的稳享90天将于2026年11月12日到期" in card.card["sub_title_text"]
