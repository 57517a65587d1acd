"""One corp's backfill from start (or from where it stopped) to the end: claim the run, run each
stage in order, mark the corp done. Shared by ``scrm backfill`` and the first start."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from handlers.backfill import customers, groups, library, progress, ways
from handlers.backfill.context import Context
from handlers.backfill.models import BackfillStage

log = logging.getLogger("handlers.backfill")

_RUNS: dict[str, Callable[[Context], Awaitable[None]]] = {
    "members": library.members, "tags": library.tags, customers.STAGE: customers.run, groups.STAGE: groups.run,
    ways.STAGE: ways.run,
}
assert tuple(_RUNS) == progress.STAGES


@dataclass(frozen=True)
class StageLine:
    """One stage as the report shows it."""

    stage: str
    status: str
    pages: int
    items: int
    skipped: int
    note: str

    @classmethod
    def of(cls, row: BackfillStage) -> StageLine:
        return cls(row.stage, row.status, row.pages, row.items, row.skipped, row.note)

    def line(self) -> str:
        skipped = f", {self.skipped} left to newer callbacks" if self.skipped else ""
        note = f" — {self.note}" if self.note else ""
        return f"{self.stage:<10} {self.status:<8} {self.items} item(s) in {self.pages} page(s){skipped}{note}"


@dataclass
class Outcome:
    """What a run did: ``ran`` False when it did not start (``reason`` says why)."""

    ran: bool
    reason: str = ""
    stages: list[StageLine] = field(default_factory=list)


async def run_backfill(ctx: Context, *, trigger: str, again: bool = False) -> Outcome:
    """Run the corp's backfill; a failure leaves it resumable (and re-raises)."""
    async with ctx.sessions() as session, session.begin():
        claim = await progress.claim(session, ctx.corp_id, ctx.owner, ctx.clock.now(), ctx.lease_s,
                                     trigger=trigger, again=again)
    if not claim.ok:
        return Outcome(False, claim.reason, await report(ctx))
    try:
        for stage, run in _RUNS.items():
            log.info("backfill stage", extra={"stage": stage})
            await run(ctx)
        async with ctx.sessions() as session, session.begin():
            await progress.finish(session, ctx.corp_id, ctx.owner, ctx.clock.now())
    except BaseException as exc:
        async with ctx.sessions() as session, session.begin():
            await progress.release(session, ctx.corp_id, ctx.owner, f"{type(exc).__name__}: {exc}")
        raise
    return Outcome(True, "", await report(ctx))


async def report(ctx: Context) -> list[StageLine]:
    async with ctx.sessions() as session:
        return [StageLine.of(r) for r in await progress.stages(session, ctx.corp_id)]
