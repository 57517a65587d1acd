"""Task cards to managers (button_interaction) and the record behind each one."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from scrm.db.engine import dialect_of, insert_ignore, table_of
from scrm.db.models_sop import SopTask
from scrm.outbox import PRIORITY_INTERACTIVE, Outbox
from scrm.scheduler import Scheduler, TriggerSpec

from .model import task_id_for

BUTTONS = {"done": ("完成", 1), "snooze": ("稍后提醒", 2), "not_relevant": ("不相关", 3)}
"""Button key → (label, WeCom style)."""

DONE_LABELS = {"done": "已完成", "snooze": "已推迟", "not_relevant": "已标记不相关"}
ESCALATE_KIND = "sop.escalate"
SNOOZE_KIND = "sop.snooze"


@dataclass(frozen=True)
class TaskCard:
    key: str  # the occurrence: one card per key, ever
    userid: str
    target: str
    source: str
    title: str
    text: str
    day: date
    buttons: Sequence[str] = ("done", "snooze", "not_relevant")
    escalate_after: timedelta | None = None
    snooze: timedelta | None = None
    snoozes: int = 0

    @property
    def task_id(self) -> str:
        return task_id_for(self.key)


def card_body(card: TaskCard, agent_id: int) -> dict[str, Any]:
    """message/send body for a button_interaction card (title ≤ 36 chars is what shows)."""
    return {
        "touser": card.userid,
        "msgtype": "template_card",
        "agentid": agent_id,
        "template_card": {
            "card_type": "button_interaction",
            "main_title": {"title": card.title[:36]},
            "sub_title_text": card.text[:1000],
            "task_id": card.task_id,
            "button_list": [{"text": BUTTONS[b][0], "style": BUTTONS[b][1], "key": b} for b in card.buttons],
        },
    }


async def issue_card(session: AsyncSession, outbox: Outbox, scheduler: Scheduler | None, card: TaskCard, *,
                     agent_id: int, now: datetime) -> bool:
    """Record the task and queue its card; returns False when this key was issued before."""
    row = {"task_id": card.task_id, "key": card.key, "userid": card.userid, "target": card.target,
           "source": card.source, "title": card.title[:256], "text": card.text, "day": card.day,
           "status": "open", "snoozes": card.snoozes, "created_at": now,
           "detail": {"buttons": list(card.buttons),
                      "escalate_after_s": card.escalate_after.total_seconds() if card.escalate_after else None,
                      "snooze_s": card.snooze.total_seconds() if card.snooze else None}}
    res = await session.execute(insert_ignore(dialect_of(session), table_of(SopTask), row, ["key"]))
    if getattr(res, "rowcount", 1) == 0:
        return False
    await outbox.add(session, f"card:{card.task_id}", "message/send", card_body(card, agent_id),
                     priority=PRIORITY_INTERACTIVE, lane=f"manager:{card.userid}")
    if card.escalate_after is not None and scheduler is not None:
        # A dated job checks later whether the card was handled; the handler decides.
        await scheduler.put_job(session, f"sop.escalate:{card.task_id}", ESCALATE_KIND,
                                TriggerSpec(type="date", at=now + card.escalate_after),
                                payload={"task_id": card.task_id}, misfire_grace_s=7 * 86400)
    return True
