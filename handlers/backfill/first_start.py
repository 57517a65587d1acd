"""The first start against a corp backfills it, once: a worker that runs the backfill unless the
corp's run is recorded done (or another instance holds it), and retries from where it stopped
after a failure. Callbacks are handled meanwhile; a callback newer than a page wins."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from handlers.backfill import progress
from handlers.backfill.context import Context
from handlers.backfill.runner import run_backfill
from handlers.backfill.settings import backfill_settings

if TYPE_CHECKING:
    from scrm.kernel.service import Runtime

log = logging.getLogger("handlers.backfill")


def context_of(runtime: Runtime) -> Context:
    return Context(sessions=runtime.sessions, wecom=runtime.wecom, clock=runtime.clock, inbox=runtime.inbox,
                   corp_id=runtime.settings.wecom.corp_id, owner=f"service:{runtime.identity.id}",
                   playbook=runtime.playbook.current, lease_s=backfill_settings(runtime.settings).lease_s)


async def backfill_once(runtime: Runtime) -> bool:
    """One attempt; True when there is nothing (more) to do here (done, or running elsewhere)."""
    ctx = context_of(runtime)
    async with runtime.sessions() as session:
        run = await progress.run_of(session, ctx.corp_id)
    if run is not None and run.status == progress.DONE:
        return True
    outcome = await run_backfill(ctx, trigger="start")
    if outcome.ran:
        log.info("backfill of the corp done: %s", "; ".join(s.line() for s in outcome.stages))
    else:
        log.info("backfill not started here: %s", outcome.reason)
    return True


async def first_start(runtime: Runtime) -> None:
    """Backfill now; after a failure, again ``retry_s`` later (the worker ends when it is done)."""
    retry_s = backfill_settings(runtime.settings).retry_s
    while True:
        try:
            if await backfill_once(runtime):
                return
        except Exception as exc:  # WeCom or the database failed: it is resumable, say so and retry
            log.error("backfill stopped; it goes on from where it stopped in %.0f s: %s", retry_s, exc)
        await runtime.clock.sleep(retry_s)
