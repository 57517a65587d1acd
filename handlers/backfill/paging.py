"""Run one paged stage: read a page, write it with its position, read the next while writing.

Pages stream: the next page is requested while the current one is written (its cursor is known
once the current page is read), so the run is paced by WeCom's per-API limit, not by the sum of
the call and the write; memory holds two pages at most. Each page's rows, the stage's new
position and the renewed lease commit together, so a crash (or a WeCom error) after page k
leaves position k: the next run reads page k+1 first.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.backfill import progress
from handlers.backfill.context import Context, PageDone

T = TypeVar("T")
Position = dict[str, Any]


@dataclass(frozen=True)
class Page(Generic[T]):
    """What one read returned: its items, where the next read starts (None: this was the last
    page of the stage), and when it was read (the time its rows are as of)."""

    items: list[T]
    next: Position | None
    read_at: datetime


Reader = Callable[[Position], Awaitable[Page[T] | None]]  # None: nothing (more) to read
Writer = Callable[[AsyncSession, Page[T]], Awaitable[tuple[int, int]]]  # (items written, skipped)


async def run_stage(ctx: Context, stage: str, read: Reader[T], write: Writer[T]) -> None:
    """Run ``stage`` from its saved position to its end (nothing when it is done already).

    Each page's transaction starts with a write, the stage's new position (on SQLite the write
    lock is then held before the page's rows are compared with what callbacks wrote); the lease
    is renewed with it once a quarter of it has passed."""
    async with ctx.sessions() as session:
        row = await progress.stage_of(session, ctx.corp_id, stage)
        if row.status == progress.DONE:
            return
        position, pages = dict(row.position), row.pages
    pending: asyncio.Future[Page[T] | None] | None = asyncio.ensure_future(read(position))
    try:
        while pending is not None:
            page = await pending
            pending = None
            if page is None:
                await _finish(ctx, stage)
                return
            if page.next is not None:
                pending = asyncio.ensure_future(read(page.next))
            async with ctx.sessions() as session, session.begin():
                now = ctx.clock.now()
                await progress.save_page(session, ctx.corp_id, stage, page.next or {}, items=len(page.items),
                                         skipped=0, now=now)
                if ctx.renewal_due():
                    await renew(ctx, session)
                items, skipped = await write(session, page)
                if (items, skipped) != (len(page.items), 0):
                    await progress.recount(session, ctx.corp_id, stage, items - len(page.items), skipped)
                if page.next is None:
                    await progress.finish_stage(session, ctx.corp_id, stage, ctx.clock.now())
            pages += 1
            if ctx.on_page is not None:
                ctx.on_page(PageDone(stage, pages, items, skipped))
    finally:
        if pending is not None:  # the read ahead of a page that failed to write: drop it
            pending.cancel()
            await asyncio.wait({pending})  # not `await pending`: our own cancellation must propagate
            if not pending.cancelled():
                pending.exception()  # retrieved, so it is not logged as never retrieved


async def renew(ctx: Context, session: AsyncSession) -> None:
    """Renew our lease in ``session`` (:class:`~handlers.backfill.progress.LeaseLost` if taken)."""
    await progress.renew(session, ctx.corp_id, ctx.owner, ctx.clock.now(), ctx.lease_s)
    ctx.renewed_at = ctx.clock.monotonic()


async def _finish(ctx: Context, stage: str) -> None:
    async with ctx.sessions() as session, session.begin():
        await renew(ctx, session)
        await progress.finish_stage(session, ctx.corp_id, stage, ctx.clock.now())
