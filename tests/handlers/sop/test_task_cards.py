"""Task cards after they were sent: Done / Snooze / Not relevant pressed in WeCom (a
template_card_event through the real callback endpoint), snoozes coming back later on the
fake clock, and escalation to the team lead when nobody answers in time."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from handlers.crm.api import CrmKeyEvent
from handlers.sop.models import SopTask
from scrm.sandbox.records import Card
from tests.handlers.sop.seeding import ROUTERS, local, seed
from tests.support.playbooks import write_shipped_playbook
from tests.support.stack import Stack, stack

START = local("2026-11-02", "10:00")  # a Monday
CUSTOMER = "wmBigSpender"


def escalation(row: SopTask) -> str:
    return f"【未处理提醒】张伟 的任务“大额转出”（编号 {row.task_id[-6:]}）已超时未处理：\n{row.text}"


async def transfer_card(b: Stack, event_id: str = "t1") -> Card:
    """A large transfer from the CRM: the reminder card reaches the manager (escalates after 24 h)."""
    async with b.runtime.sessions() as s, s.begin():
        event = CrmKeyEvent(at=b.clock.now(), event_id=event_id, crm_id=f"crm-{CUSTOMER}", event_kind="large_transfer",
                            occurred_at=b.clock.now(), details={"amount": 800000.0})
        await b.runtime.inbox.add_internal(s, event, f"crm:{event_id}")
    await b.step()
    (card,) = [c for c in b.cards("zhangwei") if "转出" in c.card["sub_title_text"]]
    return card


async def task(b: Stack, task_id: str) -> SopTask:
    async with b.runtime.sessions() as s:
        row = await s.get(SopTask, task_id)
        assert row is not None
        return row


async def press(b: Stack, card: Card, key: str) -> None:
    outcome = await b.driver.press_card_button("zhangwei", card.task_id, key)
    assert outcome.delivered and outcome.statuses == [200]
    await b.step()


async def test_done_shows_in_the_card_and_stops_the_escalation(db_url: str, tmp_path: Path) -> None:
    async with stack(db_url, tmp_path, start=START, demo=False, routers=ROUTERS,
                     playbook=write_shipped_playbook(tmp_path)) as b:
        await seed(b, customers=[CUSTOMER])
        card = await transfer_card(b)
        assert [btn["key"] for btn in card.card["button_list"]] == ["done", "snooze", "not_relevant"]
        b.clock.advance(minutes=30)
        await press(b, card, "done")
        row = await task(b, card.task_id)
        assert row.status == "done" and row.handled_at == b.clock.now()
        assert card.updates == [{"button": {"replace_name": "已完成"}}]
        await b.run_until(START + timedelta(days=3))
        assert b.texts_to("lead1") == []
        assert len(b.cards("zhangwei")) == 1


async def test_not_relevant_is_final(db_url: str, tmp_path: Path) -> None:
    async with stack(db_url, tmp_path, start=START, demo=False, routers=ROUTERS,
                     playbook=write_shipped_playbook(tmp_path)) as b:
        await seed(b, customers=[CUSTOMER])
        card = await transfer_card(b)
        await press(b, card, "not_relevant")
        assert (await task(b, card.task_id)).status == "not_relevant"
        assert card.updates == [{"button": {"replace_name": "已标记不相关"}}]
        await b.run_until(START + timedelta(days=3))
        assert b.texts_to("lead1") == [] and len(b.cards("zhangwei")) == 1


async def test_snooze_brings_the_task_back_a_day_later(db_url: str, tmp_path: Path) -> None:
    async with stack(db_url, tmp_path, start=START, demo=False, routers=ROUTERS,
                     playbook=write_shipped_playbook(tmp_path)) as b:
        await seed(b, customers=[CUSTOMER])
        card = await transfer_card(b)
        b.clock.advance(minutes=5)
        await press(b, card, "snooze")
        assert (await task(b, card.task_id)).status == "snoozed"
        assert card.updates == [{"button": {"replace_name": "已推迟"}}]
        await b.run_until(START + timedelta(days=1))  # 10:00 Tuesday: not yet
        assert len(b.cards("zhangwei")) == 1
        await b.run_until(START + timedelta(days=1, minutes=10))
        _, again = b.cards("zhangwei")
        assert again.task_id != card.task_id  # WeCom task ids are single use
        assert again.card["sub_title_text"] == card.card["sub_title_text"]
        row = await task(b, again.task_id)
        assert row.key.endswith("#snooze1") and row.snoozes == 1 and row.status == "open"
        assert row.day == START.date() + timedelta(days=1)
        # The snoozed card was not escalated; the new one is, a day after it arrived.
        await b.run_until(START + timedelta(days=2, minutes=10))
        assert b.texts_to("lead1") == [escalation(row)]
        await press(b, again, "done")  # answering late still closes it
        assert (await task(b, again.task_id)).status == "done"


async def test_a_snooze_that_ends_in_quiet_hours_waits_for_the_morning(db_url: str, tmp_path: Path) -> None:
    async with stack(db_url, tmp_path, start=START, demo=False, routers=ROUTERS,
                     playbook=write_shipped_playbook(tmp_path)) as b:
        await seed(b, customers=[CUSTOMER])
        card = await transfer_card(b)
        b.clock.set(local("2026-11-02", "22:00"))  # the manager answers late in the evening
        await press(b, card, "snooze")
        await b.run_until(local("2026-11-04", "08:29"))
        assert len(b.cards("zhangwei")) == 1  # not at 22:00 on Tuesday
        await b.run_until(local("2026-11-04", "08:31"))
        assert len(b.cards("zhangwei")) == 2
        assert b.state.delivered_messages(kind="app", to="zhangwei")[-1].at >= local("2026-11-04", "08:30").timestamp()


async def test_unanswered_card_goes_to_the_team_lead_once(db_url: str, tmp_path: Path) -> None:
    async with stack(db_url, tmp_path, start=START, demo=False, routers=ROUTERS,
                     playbook=write_shipped_playbook(tmp_path)) as b:
        await seed(b, customers=[CUSTOMER])
        card = await transfer_card(b)
        await b.run_until(START + timedelta(hours=23, minutes=58))
        assert b.texts_to("lead1") == []
        await b.run_until(START + timedelta(days=1, minutes=5))
        row = await task(b, card.task_id)
        assert row.status == "escalated" and row.escalated_to == "lead1"
        assert b.texts_to("lead1") == [escalation(row)]
        await b.run_until(START + timedelta(days=5))
        assert len(b.texts_to("lead1")) == 1
        await press(b, card, "done")  # the manager catches up
        assert (await task(b, card.task_id)).status == "done"


async def test_escalation_due_in_quiet_hours_waits_for_the_morning(db_url: str, tmp_path: Path) -> None:
    """36 h after a 10:00 card is 22:00: the team lead hears of it at the end of quiet hours."""
    edits = {"sop/reminders.yaml": {"    script: script-large-transfer-care\n    escalate_after: 24h":
                                    "    script: script-large-transfer-care\n    escalate_after: 36h"}}
    async with stack(db_url, tmp_path, start=START, demo=False, routers=ROUTERS,
                     playbook=write_shipped_playbook(tmp_path, edits=edits)) as b:
        await seed(b, customers=[CUSTOMER])
        card = await transfer_card(b)
        await b.run_until(local("2026-11-04", "08:29"))
        assert b.texts_to("lead1") == []
        assert (await task(b, card.task_id)).status == "open"
        await b.run_until(local("2026-11-04", "08:31"))
        assert len(b.texts_to("lead1")) == 1
