"""Lifecycle reactions: a chunk of the nightly scoring, and a change of stage (the customer's
timeline, and a churn-risk card to the manager)."""

from __future__ import annotations

import logging
from datetime import date
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.sop.api import ReminderRunner
from handlers.timeline.api import note
from scrm.kernel.clock import Clock
from scrm.kernel.config import Settings
from scrm.kernel.dispatch import Router
from scrm.kernel.inbox import Inbox
from scrm.kernel.outbox import Outbox
from scrm.kernel.scheduler import Scheduler
from scrm.playbook import Playbook

from .events import LifecycleNightly, StageEntered
from .nightly import run_chunk
from .rules import load_lifecycle, load_segmentation
from .settings import lifecycle_settings

router = Router("lifecycle")
log = logging.getLogger("handlers.lifecycle")


@router.on(LifecycleNightly)
async def on_nightly(event: LifecycleNightly, session: AsyncSession, inbox: Inbox, clock: Clock,
                     settings: Settings, playbook: Playbook) -> None:
    """Score one chunk and queue the next. The rules are read now (a broken file raises: the
    event retries and the log names the line; ``scrm segments check`` says the same)."""
    sop_dir = settings.playbook.sop_dir
    seg, lc = load_segmentation(sop_dir), load_lifecycle(sop_dir)
    now = clock.now()
    tz = ZoneInfo(playbook.policy.timezone)
    day = date.fromisoformat(event.day) if event.day else now.astimezone(tz).date()
    chunk = await run_chunk(session, inbox, seg, lc, today=day, now=now, tz=tz, cursor=event.cursor,
                            limit=lifecycle_settings(settings).chunk)
    log.info("lifecycle %s after %r: %d scored, %d CRM records updated, %d stage changes", day, event.cursor,
             chunk.scanned, chunk.mirrored, len(chunk.entered))
    if chunk.cursor is not None:
        nxt = LifecycleNightly(at=now, cursor=chunk.cursor, day=day.isoformat())
        await inbox.add_internal(session, nxt, f"nightly:{day.isoformat()}:{chunk.cursor}")


@router.on(StageEntered)
async def on_stage_entered(event: StageEntered, session: AsyncSession, inbox_id: int, outbox: Outbox,
                           scheduler: Scheduler, clock: Clock, settings: Settings, playbook: Playbook) -> None:
    """On the customer's timeline; a churn-risk stage also puts a card before the manager."""
    lc = load_lifecycle(settings.playbook.sop_dir)
    stage, previous = lc.stage(event.stage), lc.stage(event.previous)
    label = stage.label if stage else event.stage
    before = previous.label if previous else event.previous
    await note(session, inbox_id, "customer", event.external_userid, event.at, "lifecycle.stage",
               {"stage": event.stage, "label": label, "previous": event.previous, "previous_label": before})
    if event.churn_risk:
        runner = ReminderRunner(session, playbook, outbox, scheduler, agent_id=settings.wecom.agent_id,
                                now=clock.now())
        await runner.churn_risk(event.external_userid, f"{event.stage}:{event.day}",
                                {"stage": label, "previous_stage": before})
