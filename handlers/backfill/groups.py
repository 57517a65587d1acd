"""The groups stage: every customer group owned by an active member (``groupchat/list`` with an
owner filter of ≤100 members, as WeCom demands of a corp with more than 1,000 visible members,
then ``groupchat/get`` for each), written into the group registry.

A group whose registry row changed after the page was read (a member joined or left, a rename,
handled by the groups feature meanwhile) keeps what that callback wrote.
"""

from __future__ import annotations

import asyncio

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.backfill import members
from handlers.backfill.context import Context
from handlers.backfill.paging import Page, Position, run_stage
from handlers.groups.api import GroupChat, write_full
from scrm.adapters.wecom.errors import ErrCode, WeComError
from scrm.adapters.wecom.models_groups import GroupChat as WeComGroupChat

STAGE = "groups"
# groupchat/get calls in flight at once: the client paces them under the per-API limit anyway.
_CONCURRENCY = 8
# Dismissed (or no longer a customer group) between the listing and the read: nothing to write.
_GONE = (ErrCode.INVALID_PARAMETER, ErrCode.NOT_EXTERNAL_GROUP_CHAT)


async def run(ctx: Context) -> None:
    gate = asyncio.Semaphore(_CONCURRENCY)

    async def detail(chat_id: str) -> WeComGroupChat | None:
        async with gate:
            try:
                return (await ctx.wecom.get_group_chat(chat_id)).group_chat
            except WeComError as exc:
                if exc.errcode in _GONE:
                    return None
                raise

    async def read(position: Position) -> Page[WeComGroupChat] | None:
        at = await members.chunk_at(ctx.sessions, position)
        if at is None:
            return None
        chunk, cursor = at
        read_at = ctx.clock.now()
        reply = await ctx.wecom.list_group_chats(owners=chunk, cursor=cursor, limit=ctx.page_limit)
        chats = [c for c in await asyncio.gather(*(detail(r.chat_id) for r in reply.group_chat_list)) if c]
        return Page(chats, members.position_after(chunk, reply.next_cursor), read_at)

    async def write(session: AsyncSession, page: Page[WeComGroupChat]) -> tuple[int, int]:
        ids = [c.chat_id for c in page.items]
        rows = await session.execute(select(GroupChat.chat_id, GroupChat.updated_at, GroupChat.group_type)
                                     .where(GroupChat.chat_id.in_(ids)).with_for_update())
        known = {chat_id: (updated_at, group_type) for chat_id, updated_at, group_type in rows.all()}
        written = 0
        for chat in page.items:
            old = known.get(chat.chat_id)
            if old is not None and old[0] >= page.read_at:
                continue  # a callback handled after our read wrote it: it is newer
            playbook = ctx.playbook
            group_type = (playbook.classify_group(chat.name, chat.owner, chat.chat_id) if playbook is not None
                          else old[1] if old is not None else None)
            await write_full(session, chat, group_type, ctx.clock.now())
            written += 1
        return written, len(page.items) - written

    await run_stage(ctx, STAGE, read, write)
