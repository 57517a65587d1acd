"""The periodic sweep as a durable scheduler job (``succession.sweep``)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.succession.events import SuccessionSweep
from handlers.succession.settings import succession_settings
from scrm.kernel.config import Settings
from scrm.kernel.scheduler import Scheduler, TriggerSpec

JOB_KEY = "succession.sweep"
MISFIRE_GRACE_S = 3600


async def register_sweep(session: AsyncSession, scheduler: Scheduler, settings: Settings) -> bool:
    """Put (or disable, when ``sweep_cron`` is empty) the sweep job; returns whether it is enabled."""
    expr = succession_settings(settings).sweep_cron.strip()
    trigger = TriggerSpec(type="cron", expr=expr, timezone=settings.playbook.timezone) if expr else None
    return await scheduler.keep_job(session, JOB_KEY, SuccessionSweep, trigger, misfire_grace_s=MISFIRE_GRACE_S)
