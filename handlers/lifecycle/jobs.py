"""The nightly scoring as a durable scheduler job (``lifecycle.nightly``)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from scrm.kernel.config import Settings
from scrm.kernel.scheduler import Scheduler, TriggerSpec

from .events import LifecycleNightly
from .settings import lifecycle_settings

JOB_KEY = "lifecycle.nightly"
MISFIRE_GRACE_S = 6 * 3600  # a run a few hours late still beats a day without stages


async def register_nightly(session: AsyncSession, scheduler: Scheduler, settings: Settings) -> bool:
    """Put (or disable, when ``nightly_cron`` is empty) the nightly job; returns whether it is enabled."""
    expr = lifecycle_settings(settings).nightly_cron.strip()
    trigger = TriggerSpec(type="cron", expr=expr, timezone=settings.playbook.timezone) if expr else None
    return await scheduler.keep_job(session, JOB_KEY, LifecycleNightly, trigger, misfire_grace_s=MISFIRE_GRACE_S)
