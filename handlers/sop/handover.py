"""Task cards follow their customer to a new manager (succession: 在职/离职继承).

A card still open (open, snoozed, carried over) for a customer who moved belongs to the new
manager: its row is reassigned, and an open one is sent to the new manager at once (the old
manager's copy stays in their history). Snooze and carry-over jobs read the row when they fire,
so they reach the new manager too; dated reminders and path steps pick the customer's manager
when they fire, so they follow the relation by themselves.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.sop.cards import card_body, card_of
from handlers.sop.models import SopTask
from scrm.kernel.outbox import PRIORITY_INTERACTIVE, Outbox

MOVABLE = ("open", "snoozed", "deferred")


async def open_tasks(session: AsyncSession, external_userids: list[str]) -> dict[str, int]:
    """Cards not yet handled per customer (any manager)."""
    rows = await session.scalars(select(SopTask).where(SopTask.target.in_(external_userids),
                                                       SopTask.status.in_(MOVABLE)))
    out: dict[str, int] = {}
    for task in rows.all():
        out[task.target] = out.get(task.target, 0) + 1
    return out


async def move_tasks(session: AsyncSession, outbox: Outbox, *, external_userid: str, old: str, new: str,
                     agent_id: int, now: datetime) -> int:
    """Give ``old``'s unhandled cards about ``external_userid`` to ``new``; returns how many."""
    tasks = (await session.scalars(select(SopTask).where(SopTask.target == external_userid, SopTask.userid == old,
                                                         SopTask.status.in_(MOVABLE)))).all()
    for task in tasks:
        task.userid = new
        task.detail = {**(task.detail or {}), "moved_from": old, "moved_at": now.isoformat()}
        if task.status == "open":
            card = card_of(task)
            await outbox.add(session, f"card:{task.task_id}:to:{new}", "message/send", card_body(card, agent_id),
                             priority=PRIORITY_INTERACTIVE, lane=f"manager:{new}")
    await session.flush()
    return len(tasks)
