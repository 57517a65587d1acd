"""A whole tag-sync run outside the inbox (``scrm sync tags``, the bench): chunk by chunk.

Each chunk commits on its own (outbox rows + mirror + sync state), so an interrupted run is
resumed by running again: finished relations already match and plan nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.crm import backlog, sync
from scrm.kernel.clock import Clock
from scrm.kernel.outbox import Outbox
from scrm.kernel.progress import Progress
from scrm.playbook.models import TagGroup as TagGroupSpec


async def run_sync(sessions: async_sessionmaker[AsyncSession], outbox: Outbox | None, wecom: Any,
                   tag_groups: Mapping[str, TagGroupSpec], clock: Clock, generation: str, *,
                   dry_run: bool = False, chunk: int = sync.DEFAULT_CHUNK,
                   progress: Progress | None = None, max_queued: int | None = None,
                   wait_s: float = 1.0) -> tuple[sync.Report, sync.TagIndex]:
    """Plan (and unless ``dry_run`` queue) every relation's diff; returns totals and the index.

    ``max_queued``: before each chunk wait (``wait_s`` at a time) until fewer sync calls than
    this wait in the outbox (:mod:`handlers.crm.backlog`), so a running service sends them as they
    are queued instead of claiming among a hundred thousand.
    """
    async with sessions() as session, session.begin():
        index = await sync.load_index(session, tag_groups, wecom=None if dry_run else wecom)
    if dry_run:
        index = _with_placeholders(index)
    total = sync.Report()
    cursor: int | None = 0
    while cursor is not None:
        if max_queued is not None and not dry_run:
            await _wait_for_room(sessions, clock, max_queued, wait_s, progress, total)
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


def _with_placeholders(index: sync.TagIndex) -> sync.TagIndex:
    """Stand-in ids for tags a real run would create first, so the dry run counts them as adds.

    They never reach WeCom: a dry run queues nothing.
    """
    fake = {name: f"new:{name}" for name in index.missing}
    return replace(index, ids={**index.ids, **fake}, names={**index.names, **{v: k for k, v in fake.items()}})


async def _wait_for_room(sessions: async_sessionmaker[AsyncSession], clock: Clock, max_queued: int,
                         wait_s: float, progress: Progress | None, total: sync.Report) -> None:
    while True:
        async with sessions() as session:
            queued = await backlog.queued_calls(session)
        if queued < max_queued:
            return
        if progress is not None:
            progress.update(total.scanned, f"{total.scanned:,} relations, {total.calls:,} mark_tag; "
                                           f"waiting for the outbox to send ({queued:,} queued)")
        await clock.sleep(wait_s)
