"""What happens to a task card after it was sent: buttons, snooze, escalation to the team lead."""

from __future__ import annotations

import dataclasses
import logging
from datetime import date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.contacts.api import Member, record_contact
from handlers.sop.models import SopTask
from scrm.kernel.outbox import PRIORITY_INTERACTIVE, Outbox
from scrm.kernel.scheduler import Scheduler, TriggerSpec

from .cards import DONE_LABELS, card_of, issue_card, send_card
from .events import SopSnoozeDue

log = logging.getLogger("handlers.sop.tasks")

STATUS_OF = {"done": "done", "snooze": "snoozed", "not_relevant": "not_relevant"}
DEFAULT_SNOOZE = timedelta(days=1)


async def on_button(session: AsyncSession, outbox: Outbox, scheduler: Scheduler | None, *, task_id: str,
                    event_key: str, userid: str, response_code: str, agent_id: int, now: datetime) -> str | None:
    """A manager pressed a button; returns the new status (None for a card that is not ours)."""
    task = await session.get(SopTask, task_id)
    status = STATUS_OF.get(event_key)
    if task is None or status is None:
        return None
    if task.status in ("open", "escalated"):
        task.status = status
        task.handled_at = now
        if status == "done" and task.target:
            # The manager did what the card asked of them for this customer: that is contact
            # (a group card's target is a chat id, which no follow relation matches).
            await record_contact(session, task.target, now, userid=task.userid)
        if status == "snoozed" and scheduler is not None:
            snooze = timedelta(seconds=float(task.detail.get("snooze_s") or DEFAULT_SNOOZE.total_seconds()))
            await scheduler.put_job(session, f"sop.snooze:{task_id}", SopSnoozeDue,
                                    TriggerSpec(type="date", at=now + snooze), payload={"task_id": task_id},
                                    misfire_grace_s=86400)
    if response_code:
        # The response code is single use and valid 72 h: the card shows the choice in place.
        body = {"userids": [userid or task.userid], "agentid": agent_id, "response_code": response_code,
                "button": {"replace_name": DONE_LABELS[event_key]}}
        await outbox.add(session, f"card-update:{task_id}:{response_code[:64]}", "message/update_template_card",
                         body, priority=PRIORITY_INTERACTIVE)
    return task.status


async def on_snooze_due(session: AsyncSession, outbox: Outbox, scheduler: Scheduler | None, *, task_id: str,
                        agent_id: int, now: datetime, day: date) -> bool:
    """The snooze is over: the same task again, as a new card (task ids are single use)."""
    task = await session.get(SopTask, task_id)
    if task is None or task.status != "snoozed":
        return False
    n = task.snoozes + 1
    card = card_of(task, key=f"{task.key}#snooze{n}", day=day, snoozes=n)
    if card.snooze is None:
        card = dataclasses.replace(card, snooze=DEFAULT_SNOOZE)
    return await issue_card(session, outbox, scheduler, card, agent_id=agent_id, now=now)


async def on_carry_due(session: AsyncSession, outbox: Outbox, scheduler: Scheduler | None, *, task_id: str,
                       agent_id: int, now: datetime) -> bool:
    """The workday a card was carried over to has begun: send it (it already counts for today)."""
    task = await session.get(SopTask, task_id)
    if task is None or task.status != "deferred":
        return False
    task.status = "open"
    await send_card(session, outbox, scheduler, card_of(task), agent_id=agent_id, now=now)
    return True


async def on_escalate_due(session: AsyncSession, outbox: Outbox, *, task_id: str, agent_id: int,
                          now: datetime) -> str | None:
    """Still open after ``escalate_after``: tell the manager's team lead; returns the lead."""
    task = await session.get(SopTask, task_id)
    if task is None or task.status != "open":
        return None
    lead = await session.scalar(select(Member.team_lead).where(Member.userid == task.userid))
    if not lead:
        log.warning("task %s unhandled but %s has no team lead", task_id, task.userid)
        return None
    name = await session.scalar(select(Member.name).where(Member.userid == task.userid)) or task.userid
    # The task's number keeps two tasks with the same text (two large transfers of one customer)
    # apart: message/send's duplicate check would otherwise drop the second alert as a repeat.
    content = f"【未处理提醒】{name} 的任务“{task.title}”（编号 {task_id[-6:]}）已超时未处理：\n{task.text}"
    body = {"touser": lead, "msgtype": "text", "agentid": agent_id, "text": {"content": content[:2000]}}
    await outbox.add(session, f"escalate:{task_id}", "message/send", body, priority=PRIORITY_INTERACTIVE)
    task.status = "escalated"
    task.escalated_to = lead
    return lead
