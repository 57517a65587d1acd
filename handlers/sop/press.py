"""A task card's button pressed somewhere other than the card: the client manager's sidebar
offers Done / Snooze / Not relevant beside the chat.

The same state change as the card's own button (:func:`handlers.sop.tasks.on_button`), and the
card in WeCom shows the choice the same way: ``message/update_template_card`` with a response
code. A pressed card brings its own code with the callback; here it is the one ``message/send``
returned when the card went out (kept in the outbox row's result, single use, 72 hours), so a
card older than that keeps its buttons in WeCom while the task itself is settled.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.sop.models import SopTask
from scrm.kernel.models import OutboxAction
from scrm.kernel.outbox import Outbox
from scrm.kernel.scheduler import Scheduler

from .tasks import STATUS_OF, on_button

RESPONSE_CODE_TTL = timedelta(hours=72)
PRESSABLE = ("open", "escalated")


async def card_response_code(session: AsyncSession, task: SopTask, now: datetime) -> str:
    """The unexpired response code of the card this task's manager holds ('' when none).

    The card went out as ``card:{task_id}``, or, moved to another manager with the customer,
    as ``card:{task_id}:to:{userid}`` (``handlers.sop.handover``): the newest sent one counts.
    """
    key = f"card:{task.task_id}"
    rows = await session.execute(
        select(OutboxAction.result, OutboxAction.sent_at)
        .where(or_(OutboxAction.idempotency_key == key, OutboxAction.idempotency_key == f"{key}:to:{task.userid}"),
               OutboxAction.status == "sent")
        .order_by(OutboxAction.sent_at.desc()).limit(1))
    row = rows.first()
    if row is None or row.sent_at is None or now - row.sent_at >= RESPONSE_CODE_TTL:
        return ""
    return str((row.result or {}).get("response_code") or "")


async def press_task(session: AsyncSession, outbox: Outbox, scheduler: Scheduler | None, *, task_id: str,
                     button: str, agent_id: int, now: datetime) -> str | None:
    """Apply ``button`` (done | snooze | not_relevant) to an open task as its card would.

    Returns the new status; None when the task does not exist, the button is unknown, or the
    task was already handled (nothing changes then, the card included).
    """
    task = await session.get(SopTask, task_id)
    if task is None or button not in STATUS_OF or task.status not in PRESSABLE:
        return None
    code = await card_response_code(session, task, now)
    # The card's recipient sees the update, whoever pressed (a team lead may settle a task).
    return await on_button(session, outbox, scheduler, task_id=task_id, event_key=button, userid=task.userid,
                           response_code=code, agent_id=agent_id, now=now)
