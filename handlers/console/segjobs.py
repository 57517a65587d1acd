"""The 客群与会员 page's snapshot as durable scheduler jobs (:mod:`handlers.console.segstore`).

* ``console.segments``, nightly (``[console] segments_cron``, ``30 4 * * *``: after the
  lifecycle's 03:30 and membership's 04:00 nightlies, so it counts what they left): rebuilds
  today's snapshot from the raw rows. A replayed or second event rebuilds the same rows.
* ``console.segments.now``, a one-off due at start (the feature's ``jobs`` hook): builds a
  snapshot only when none is stored (right after install, or when the nightly is off), so the
  page has figures the same day; otherwise it does nothing.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import ClassVar
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.console import segstore
from handlers.console.jobs import router, zone_of
from handlers.console.settings import console_settings
from scrm.kernel.clock import Clock
from scrm.kernel.config import Settings
from scrm.kernel.events import Internal, Scheduled
from scrm.kernel.scheduler import Scheduler, TriggerSpec
from scrm.playbook import Playbook
from scrm.playbook.quiet import local_day

JOB_KEY = "console.segments"
NOW_JOB_KEY = "console.segments.now"
# A late snapshot is still today's (the page shows yesterday's meanwhile); a day late, the next
# night's run counts anyway.
MISFIRE_GRACE_S = 20 * 3600

log = logging.getLogger("handlers.console.segstore")


class ConsoleSegmentsDue(Scheduled):
    """Count the behaviour matrix and the membership figures per manager and store them (fired
    nightly by ``console.segments``; at start by ``console.segments.now``, only if none is stored)."""

    KIND: ClassVar[str] = "console.segments"
    SOURCE: ClassVar[str] = "console"

    only_if_missing: bool = False


EVENTS: tuple[type[Internal], ...] = (ConsoleSegmentsDue,)


async def register(session: AsyncSession, scheduler: Scheduler, settings: Settings, zone: str, now: datetime) -> bool:
    """Put the nightly snapshot (or disable it, when ``segments_cron`` is empty or the console is
    off) and, with the console on, a one-off due ``now`` that builds one if none is stored."""
    own = console_settings(settings)
    expr = own.segments_cron.strip() if own.enabled else ""
    trigger = TriggerSpec(type="cron", expr=expr, timezone=zone) if expr else None
    nightly = await scheduler.keep_job(session, JOB_KEY, ConsoleSegmentsDue, trigger, misfire_grace_s=MISFIRE_GRACE_S)
    if own.enabled:
        await scheduler.put_job(session, NOW_JOB_KEY, ConsoleSegmentsDue, TriggerSpec(type="date", at=now),
                                payload={"only_if_missing": True}, misfire_grace_s=MISFIRE_GRACE_S)
    return nightly


@router.on(ConsoleSegmentsDue)
async def on_segments(event: ConsoleSegmentsDue, session: AsyncSession, clock: Clock, settings: Settings,
                      playbook: Playbook) -> None:
    if event.only_if_missing and await segstore.latest(session) is not None:
        log.info("console segments: a snapshot is stored already")
        return
    now = clock.now()
    await segstore.rebuild(session, local_day(playbook, now), now, ZoneInfo(zone_of(playbook, settings)))
