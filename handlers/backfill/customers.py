"""The customers stage: every active member's customers and follow relations with their tags
(``batch/get_by_user``), written page by page (see :mod:`handlers.backfill.relations`), and the
CRM rows waiting for these contacts linked and queued for their tags.

Customers of members who already resigned are not listed here: WeCom keeps them for
succession (``get_unassigned_list``), which hands them over.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.backfill import members
from handlers.backfill.context import Context
from handlers.backfill.paging import Page, Position, run_stage
from handlers.backfill.relations import write_relations
from handlers.crm.api import link_contacts, queue_sync, writeback_baselines
from scrm.adapters.wecom.errors import ErrCode, WeComError
from scrm.adapters.wecom.models import BatchGetByUserResponse, ExternalContactFollow

STAGE = "relations"


async def run(ctx: Context) -> None:
    async def read(position: Position) -> Page[ExternalContactFollow] | None:
        at = await members.chunk_at(ctx.sessions, position)
        if at is None:
            return None
        chunk, cursor = at
        read_at = ctx.clock.now()
        reply: BatchGetByUserResponse | None = None
        while reply is None:
            try:
                reply = await ctx.wecom.batch_get_by_user(chunk, cursor=cursor, limit=ctx.page_limit)
            except WeComError as exc:
                if exc.errcode != ErrCode.USERID_NOT_FOUND:
                    raise
                kept = await members.still_members(ctx.wecom, chunk)
                if kept == chunk:
                    raise
                if not kept:
                    return Page([], {"after": chunk[-1]}, read_at)
                chunk, cursor = kept, ""  # another member list: WeCom's cursor no longer applies
        return Page(reply.external_contact_list, members.position_after(chunk, reply.next_cursor), read_at)

    async def write(session: AsyncSession, page: Page[ExternalContactFollow]) -> tuple[int, int]:
        written = await write_relations(session, page.items, page.read_at)
        now = ctx.clock.now()
        await writeback_baselines(session, written.relations, ctx.crm_tag_ids, now)
        crm_ids = await link_contacts(session, written.contacts, now)
        await queue_sync(session, ctx.inbox, crm_ids, now, f"backfill:{ctx.corp_id}:{page.read_at.isoformat()}")
        return len(written.relations), written.skipped

    await run_stage(ctx, STAGE, read, write)
