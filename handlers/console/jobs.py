"""The nightly roll-up as a durable scheduler job (``console.rollup``): each fire time becomes one
``console.rollup`` internal event, so several instances, or a replay, roll a day up once — and
rolling a day up twice stores the same rows anyway (:func:`handlers.console.rollup.rebuild`
replaces the day's rows). Each run rolls up every complete day not rolled up yet (a service down
for a week catches up) and the days whose task cards were still unsettled."""

from __future__ import annotations

import logging
from typing import ClassVar

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.console.rollup import roll_up_due
from handlers.console.settings import console_settings
from scrm.kernel.clock import Clock
from scrm.kernel.config import Settings
from scrm.kernel.dispatch import Router
from scrm.kernel.events import Internal, Scheduled
from scrm.kernel.scheduler import Scheduler, TriggerSpec
from scrm.playbook import Playbook
from scrm.playbook.quiet import local_day

JOB_KEY = "console.rollup"
# Late is still useful (the cockpit computes a missing day live meanwhile); a day later, the
# next night's run catches the day up anyway.
MISFIRE_GRACE_S = 20 * 3600

router = Router("console")
log = logging.getLogger("handlers.console.rollup")


class ConsoleRollupDue(Scheduled):
    """Roll up the days that are due (fired nightly by the ``console.rollup`` job)."""

    KIND: ClassVar[str] = "console.rollup"
    SOURCE: ClassVar[str] = "console"


EVENTS: tuple[type[Internal], ...] = (ConsoleRollupDue,)


def zone_of(playbook: Playbook | None, settings: Settings) -> str:
    """The bank's time zone: the playbook's policy, as the pages' dates (``today_of``)."""
    return playbook.policy.timezone if playbook is not None else settings.playbook.timezone


async def register_rollup(session: AsyncSession, scheduler: Scheduler, settings: Settings, zone: str) -> bool:
    """Put (or disable, when ``rollup_cron`` is empty) the nightly roll-up job."""
    expr = console_settings(settings).rollup_cron.strip()
    trigger = TriggerSpec(type="cron", expr=expr, timezone=zone) if expr else None
    return await scheduler.keep_job(session, JOB_KEY, ConsoleRollupDue, trigger, misfire_grace_s=MISFIRE_GRACE_S)


@router.on(ConsoleRollupDue)
async def on_rollup(event: ConsoleRollupDue, session: AsyncSession, clock: Clock, settings: Settings,
                    playbook: Playbook) -> None:
    now = clock.now()
    days = await roll_up_due(session, local_day(playbook, now), zone_of(playbook, settings), now,
                             console_settings(settings).rollup_history_days)
    log.info("console roll-up: %d day(s)", len(days),
             extra={"days": [d.isoformat() for d in days[:5]] + (["…"] if len(days) > 5 else [])})
