"""What a completed transfer changes besides WeCom, in the follower's transaction: the mirror's
relation (tags with it), the customer's open task cards, the timeline, the ``manager_change``
key event (in-office moves) and the CRM's write-back webhook (``owner.changed``)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.contacts.api import Customer, hand_over_follow
from handlers.crm.api import WEBHOOK_KIND, Binding, CrmKeyEvent, crm_settings
from handlers.groups.api import GroupChat
from handlers.sop.api import move_tasks
from handlers.succession.models import SuccessionBatch, SuccessionItem
from handlers.timeline.api import note
from scrm.kernel.config import Settings
from scrm.kernel.inbox import Inbox
from scrm.kernel.outbox import PRIORITY_DEFAULT, Outbox


async def crm_id_of(session: AsyncSession, external_userid: str) -> str | None:
    crm_id = await session.scalar(select(Customer.crm_id).where(Customer.external_userid == external_userid))
    return crm_id or await session.scalar(select(Binding.crm_id).where(Binding.external_userid == external_userid))


async def customer_done(session: AsyncSession, outbox: Outbox, inbox: Inbox, settings: Settings,
                        batch: SuccessionBatch, item: SuccessionItem, inbox_id: int, at: datetime) -> None:
    """A customer now belongs to ``item.takeover_userid``."""
    ext, old, new = item.target, item.handover_userid, item.takeover_userid
    await hand_over_follow(session, ext, old, new, at, f"succession {batch.id}")
    moved = await move_tasks(session, outbox, external_userid=ext, old=old, new=new,
                             agent_id=settings.wecom.agent_id, now=at)
    detail = {"from": old, "to": new, "batch": batch.id, "kind": batch.kind, "tasks_moved": moved}
    await note(session, inbox_id, "customer", ext, at, "succession.transferred", detail)
    crm_id = await crm_id_of(session, ext)
    if crm_id is None:
        return
    if batch.kind == "move":
        # The reminder "管户调整" reaches the new manager, as a CRM-sent manager_change would.
        event = CrmKeyEvent(at=at, event_id=f"succession:{item.id}", crm_id=crm_id, event_kind="manager_change",
                            occurred_at=at, external_userid=ext,
                            details={"new_manager": new, "old_manager": old, "batch": batch.id})
        await inbox.add_internal(session, event, f"succession:manager_change:{item.id}")
    if crm_settings(settings).webhook_url:
        body = {"type": "owner.changed", "crm_id": crm_id, "external_userid": ext, "old_userid": old,
                "userid": new, "at": at.isoformat(), "reason": batch.kind, "batch": batch.id}
        await outbox.add_action(session, f"crm:owner:{item.id}", WEBHOOK_KIND, {"body": body},
                                priority=PRIORITY_DEFAULT, lane=f"crm:{crm_id}")


async def customer_failed(session: AsyncSession, item: SuccessionItem, inbox_id: int, at: datetime) -> None:
    """The customer stays with the previous manager; the timeline says why."""
    await note(session, inbox_id, "customer", item.target, at, f"succession.{item.status}",
               {"from": item.handover_userid, "to": item.takeover_userid, "batch": item.batch_id,
                "reason": item.reason, "errcode": item.errcode})


async def group_done(session: AsyncSession, item: SuccessionItem, inbox_id: int, at: datetime) -> None:
    await session.execute(update(GroupChat).where(GroupChat.chat_id == item.target)
                          .values(owner=item.takeover_userid, updated_at=at))
    await note(session, inbox_id, "group", item.target, at, "succession.transferred",
               {"from": item.handover_userid, "to": item.takeover_userid, "batch": item.batch_id})
