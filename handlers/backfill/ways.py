"""The contact-ways stage: the corp's 「联系我」 ways (``list_contact_way`` in 90-day windows
back to 2021-07-10, the earliest WeCom lists, then ``get_contact_way``), kept as channels by
their ``state``.

A way already known under its state keeps its row; an adopted one has no spec hash, so the next
``scrm channels sync`` brings the way WeCom already has in line with ``sop/channels.yaml``
instead of creating a second QR code for the same channel. Ways without a state name no channel
and are only counted.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.backfill.context import Context
from handlers.backfill.paging import Page, Position, run_stage
from handlers.contacts.api import ChannelWay
from scrm.adapters.db.engine import dialect_of, insert_ignore, table_of
from scrm.adapters.wecom.errors import ErrCode, WeComError
from scrm.adapters.wecom.models import ContactWayInfo

STAGE = "ways"
WINDOW_S = 90 * 86400
EARLIEST = int(datetime(2021, 7, 10, tzinfo=UTC).timestamp())
_CONCURRENCY = 8


async def run(ctx: Context) -> None:
    gate = asyncio.Semaphore(_CONCURRENCY)

    async def detail(config_id: str) -> ContactWayInfo | None:
        async with gate:
            try:
                return (await ctx.wecom.get_contact_way(config_id)).contact_way
            except WeComError as exc:
                if exc.errcode == ErrCode.INVALID_PARAMETER:  # deleted since the listing
                    return None
                raise

    async def read(position: Position) -> Page[ContactWayInfo] | None:
        read_at = ctx.clock.now()
        end = int(position.get("end") or read_at.timestamp())
        if end < EARLIEST:
            return None
        start = max(EARLIEST, end - WINDOW_S + 1)
        cursor = str(position.get("cursor") or "")
        reply = await ctx.wecom.list_contact_way(start_time=start, end_time=end, cursor=cursor,
                                                 limit=ctx.page_limit)
        found = [w for w in await asyncio.gather(*(detail(r.config_id) for r in reply.contact_way)) if w]
        nxt: Position | None = {"end": end, "cursor": reply.next_cursor} if reply.next_cursor else {"end": start - 1}
        if not reply.next_cursor and start <= EARLIEST:
            nxt = None
        return Page(found, nxt, read_at)

    async def write(session: AsyncSession, page: Page[ContactWayInfo]) -> tuple[int, int]:
        rows = [{"key": w.state, "name": (w.remark or w.state)[:128], "config_id": w.config_id,
                 "qr_code": w.qr_code[:512], "spec_hash": "", "status": "active", "synced_at": page.read_at}
                for w in page.items if w.state]
        if rows:
            await session.execute(insert_ignore(dialect_of(session), table_of(ChannelWay), ["key"]), rows)
        return len(rows), len(page.items) - len(rows)

    await run_stage(ctx, STAGE, read, write)
