"""Keep the local corp tag catalog in step with WeCom's change_external_tag events.

Creates and updates are re-read by id (get_corp_tag_list) rather than trusted from the event,
which carries only the id; deletes are applied directly (a deleted tag cannot be read back).
When an event is ambiguous — a shuffle of every group, an id WeCom no longer returns — the
whole catalog is re-read. Reads happen before writes.
"""

from __future__ import annotations

import logging

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.tags import catalog as tagcatalog
from handlers.tags.models import Tag
from scrm.adapters.wecom import events as ev
from scrm.adapters.wecom.api import WeComClient
from scrm.kernel.dispatch import Router

router = Router("tags")
log = logging.getLogger("handlers.tags")


@router.on(ev.ExternalTagCreate, ev.ExternalTagUpdate)
async def on_create_or_update(event: ev.ExternalTagCreate | ev.ExternalTagUpdate, session: AsyncSession,
                              wecom: WeComClient) -> None:
    """Re-read the tag (with its group) or the whole group, and mirror it."""
    group_read = event.tag_type == "tag_group"
    reply = await (wecom.get_corp_tag_list(group_ids=[event.id]) if group_read
                   else wecom.get_corp_tag_list(tag_ids=[event.id]))
    if not reply.tag_group:
        log.info("changed tag not returned by WeCom; re-reading the catalog", extra={"id": event.id})
        await tagcatalog.refresh(session, wecom)
        return
    await tagcatalog.write_groups(session, reply.tag_group, complete_groups=group_read)


@router.on(ev.ExternalTagDelete)
async def on_delete(event: ev.ExternalTagDelete, session: AsyncSession) -> None:
    """Drop the tag (or the group and all its tags) and take it off every relation."""
    if event.tag_type == "tag_group":
        await tagcatalog.mark_group_deleted(session, event.id)
        return
    group_id = await session.scalar(select(Tag.group_id).where(Tag.tag_id == event.id))
    await tagcatalog.mark_tags_deleted(session, [event.id])
    if group_id is not None:
        live = await session.scalar(select(func.count()).select_from(Tag)
                                    .where(Tag.group_id == group_id, Tag.deleted.is_(False)))
        if not live:  # WeCom deletes a group emptied of tags
            await tagcatalog.mark_group_deleted(session, group_id)


@router.on(ev.ExternalTagShuffle)
async def on_shuffle(event: ev.ExternalTagShuffle, session: AsyncSession, wecom: WeComClient) -> None:
    """New tag order: re-read the group, or every group when the event names none."""
    if event.id:
        reply = await wecom.get_corp_tag_list(group_ids=[event.id])
        if reply.tag_group:
            await tagcatalog.write_groups(session, reply.tag_group, complete_groups=True)
            return
    await tagcatalog.refresh(session, wecom)
