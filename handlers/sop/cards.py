"""Task cards to managers (button_interaction) and the record behind each one.

A card is one ``sop_task`` row per occurrence key, ever. It is either sent now
(:func:`issue_card`) or, when the manager already has ``manager_daily_tasks`` cards that day,
carried over (:func:`defer_card`): the row is written for the first later workday with room
(so it counts against that day's limit) with status ``deferred``, and a dated job sends it that
morning (:func:`handlers.sop.tasks.on_carry_due`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.sop.models import SopTask
from scrm.adapters.db.engine import dialect_of, insert_ignore, table_of
from scrm.kernel.models import Occurrence
from scrm.kernel.outbox import PRIORITY_INTERACTIVE, Outbox
from scrm.kernel.scheduler import Scheduler, TriggerSpec
from scrm.playbook import Playbook
from scrm.playbook.quiet import next_allowed

from .events import SopCarryDue, SopEscalateDue
from .model import task_id_for

BUTTONS = {"done": ("完成", 1), "snooze": ("稍后提醒", 2), "not_relevant": ("不相关", 3)}
"""Button key → (label, WeCom style)."""

DONE_LABELS = {"done": "已完成", "snooze": "已推迟", "not_relevant": "已标记不相关"}
CARRY_AT = time(9, 0)  # carried-over cards arrive when the branch opens
CARRY_SEARCH_DAYS = 60  # give up (and say so) rather than scan the calendar forever
CARRY_GRACE_S = 7 * 86400  # a card that waited is still worth sending after an outage


#: Added to a card whose step names a ``script``: the message itself is in the chat sidebar.
SCRIPT_HINT = "建议话术已备好：打开与客户的聊天，在聊天工具栏中一键发送。"


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
    link: tuple[str, str] | None = None  # (title, tracked URL) of the material to share
    script: str | None = None  # the material the sidebar offers as this task's message to the customer

    @property
    def task_id(self) -> str:
        return task_id_for(self.key)


def card_body(card: TaskCard, agent_id: int) -> dict[str, Any]:
    """message/send body for a button_interaction card (title ≤ 36 chars is what shows)."""
    template: dict[str, Any] = {
        "card_type": "button_interaction",
        "main_title": {"title": card.title[:36]},
        "sub_title_text": card.text[:1000],
        "task_id": card.task_id,
        "button_list": [{"text": BUTTONS[b][0], "style": BUTTONS[b][1], "key": b} for b in card.buttons],
    }
    if card.link is not None:
        # "Share this": the manager opens (and forwards) the tracked link from the card.
        title, url = card.link
        template["card_action"] = {"type": 1, "url": url}
        template["jump_list"] = [{"type": 1, "title": title[:64], "url": url}]
    return {"touser": card.userid, "msgtype": "template_card", "agentid": agent_id, "template_card": template}


def _detail(card: TaskCard) -> dict[str, Any]:
    """What it takes to send the card again later (snooze, carry-over)."""
    return {"buttons": list(card.buttons),
            "escalate_after_s": card.escalate_after.total_seconds() if card.escalate_after else None,
            "snooze_s": card.snooze.total_seconds() if card.snooze else None,
            "link": list(card.link) if card.link else None,
            **({"script": card.script} if card.script else {})}


def card_of(task: SopTask, *, key: str | None = None, day: date | None = None, snoozes: int | None = None) -> TaskCard:
    """The card a ``sop_task`` row stands for (optionally as a new occurrence: snoozes)."""
    d = task.detail or {}
    esc, snooze, link = d.get("escalate_after_s"), d.get("snooze_s"), d.get("link")
    return TaskCard(key=key or task.key, userid=task.userid, target=task.target, source=task.source,
                    title=task.title, text=task.text, day=day or task.day,
                    buttons=tuple(d.get("buttons") or ("done", "snooze", "not_relevant")),
                    escalate_after=timedelta(seconds=float(esc)) if esc else None,
                    snooze=timedelta(seconds=float(snooze)) if snooze else None,
                    snoozes=task.snoozes if snoozes is None else snoozes,
                    link=(str(link[0]), str(link[1])) if isinstance(link, list) and len(link) == 2 else None,
                    script=str(d["script"]) if d.get("script") else None)


def _row(card: TaskCard, *, status: str, day: date, now: datetime, extra: dict[str, Any] | None = None
         ) -> dict[str, Any]:
    return {"task_id": card.task_id, "key": card.key, "userid": card.userid, "target": card.target,
            "source": card.source, "title": card.title[:256], "text": card.text, "day": day, "status": status,
            "snoozes": card.snoozes, "created_at": now, "detail": {**_detail(card), **(extra or {})}}


async def _insert(session: AsyncSession, row: dict[str, Any]) -> bool:
    res = await session.execute(insert_ignore(dialect_of(session), table_of(SopTask), ["key"]), row)
    return getattr(res, "rowcount", 1) != 0


async def issue_card(session: AsyncSession, outbox: Outbox, scheduler: Scheduler | None, card: TaskCard, *,
                     agent_id: int, now: datetime, not_before: datetime | None = None) -> bool:
    """Record the task and queue its card (held back until ``not_before``, e.g. the end of the
    quiet hours); returns False when this key was issued before."""
    if not await _insert(session, _row(card, status="open", day=card.day, now=now)):
        return False
    await send_card(session, outbox, scheduler, card, agent_id=agent_id, now=now, not_before=not_before)
    return True


async def send_card(session: AsyncSession, outbox: Outbox, scheduler: Scheduler | None, card: TaskCard, *,
                    agent_id: int, now: datetime, not_before: datetime | None = None) -> None:
    """Queue the card of a recorded task, and the job that escalates it if nobody answers."""
    delay_s = max(0.0, (not_before - now).total_seconds()) if not_before is not None else 0.0
    await outbox.add(session, f"card:{card.task_id}", "message/send", card_body(card, agent_id),
                     priority=PRIORITY_INTERACTIVE, lane=f"manager:{card.userid}", delay_s=delay_s)
    if card.escalate_after is not None and scheduler is not None:
        # A dated job checks later whether the card was handled; the handler decides.
        await scheduler.put_job(session, f"sop.escalate:{card.task_id}", SopEscalateDue,
                                TriggerSpec(type="date", at=now + card.escalate_after),
                                payload={"task_id": card.task_id}, misfire_grace_s=7 * 86400)


async def tasks_on(session: AsyncSession, userid: str, day: date) -> int:
    """Cards ``userid`` has for ``day``, carried-over ones included (what the limit counts)."""
    n = await session.scalar(select(func.count()).select_from(SopTask)
                             .where(SopTask.userid == userid, SopTask.day == day))
    return int(n or 0)


async def defer_card(session: AsyncSession, scheduler: Scheduler, card: TaskCard, pb: Playbook, *,
                     now: datetime, reason: str) -> date | None:
    """Carry a card over the manager's daily limit to the first later workday with room.

    Returns that day, or None when this key was issued or deferred before (idempotent) or no
    workday within :data:`CARRY_SEARCH_DAYS` has room.
    """
    if await session.scalar(select(SopTask.task_id).where(SopTask.key == card.key)) is not None:
        return None
    limit = pb.policy.manager_daily_tasks
    day = card.day
    for _ in range(CARRY_SEARCH_DAYS):
        day = pb.work_calendar.next_workday(day + timedelta(days=1))
        if await tasks_on(session, card.userid, day) < limit:
            break
    else:
        return None
    extra = {"deferred": {"from": card.day.isoformat(), "reason": reason}}
    if not await _insert(session, _row(card, status="deferred", day=day, now=now, extra=extra)):
        return None
    tz = ZoneInfo(pb.policy.timezone)
    at = next_allowed(pb, datetime.combine(day, CARRY_AT, tz))
    await scheduler.put_job(session, f"sop.carry:{card.task_id}", SopCarryDue,
                            TriggerSpec(type="date", at=at, timezone=pb.policy.timezone),
                            payload={"task_id": card.task_id}, misfire_grace_s=CARRY_GRACE_S)
    return day


async def record_outcome(session: AsyncSession, job: str, occurrence: str, outcome: str, reason: str | None,
                         now: datetime) -> None:
    """One ``occurrence`` row (done | skipped | deferred) with its reason; a repeat adds nothing."""
    row = {"job_key": job[:256], "occurrence_key": occurrence[:512], "outcome": outcome, "reason": reason, "at": now}
    await session.execute(insert_ignore(dialect_of(session), table_of(Occurrence),
                                        ["job_key", "occurrence_key"]), row)
