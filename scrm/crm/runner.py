"""A whole tag-sync run outside the inbox (``scrm sync tags``, the bench): chunk by chunk.

Each chunk commits on its own (outbox rows + mirror + sync state), so an interrupted run is
resumed by running again: finished relations already match and plan nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from scrm.clock import Clock
from scrm.crm import sync
from scrm.crm.progress import Progress
from scrm.outbox import Outbox
from scrm.sop.models import TagGroup as TagGroupSpec


async def run_sync(sessions: async_sessionmaker[AsyncSession], outbox: Outbox | None, wecom: Any,
                   tag_groups: Mapping[str, TagGroupSpec], clock: Clock, generation: str, *,
                   dry_run: bool = False, chunk: int = sync.DEFAULT_CHUNK,
                   progress: Progress | None = None) -> tuple[sync.Report, sync.TagIndex]:
    """Plan (and unless ``dry_run`` queue) every relation's diff; returns totals and the index."""
    async with sessions() as session, session.begin():
        index = await sync.load_index(session, tag_groups, wecom=None if dry_run else wecom)
    total = sync.Report()
    cursor: int | None = 0
    while cursor is not None:
        async with sessions() as session, session.begin():
            diffs, scanned, nxt = await sync.plan_chunk(session, tag_groups, index, sync.Scope(), cursor, chunk)
            if not dry_run and outbox is not None:
                await sync.apply_chunk(session, outbox, diffs, generation, clock.now())
        cursor = nxt
        total += sync.summarize(diffs, index, scanned)
        if progress is not None:
            progress.update(total.scanned, f"{total.scanned:,} relations, {total.calls:,} mark_tag")
    if progress is not None:
        progress.done(total.scanned, f"{total.scanned:,} relations, {total.calls:,} mark_tag")
    return total, index
