"""The nightly lapse and review as a durable scheduler job (``membership.nightly``)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from scrm.kernel.config import Settings
from scrm.kernel.scheduler import Scheduler, TriggerSpec

from .events import MembershipNightly
from .settings import membership_settings

JOB_KEY = "membership.nightly"
# A night missed is made up by the next one (lapses are read from the last one written, a review
# not yet done is done then), so a late run is worth little.
MISFIRE_GRACE_S = 3 * 3600


async def register_nightly(session: AsyncSession, scheduler: Scheduler, settings: Settings) -> bool:
    """Put (or disable, when ``nightly_cron`` is empty) the nightly job; returns whether it is enabled."""
    expr = membership_settings(settings).nightly_cron.strip()
    trigger = TriggerSpec(type="cron", expr=expr, timezone=settings.playbook.timezone) if expr else None
    return await scheduler.keep_job(session, JOB_KEY, MembershipNightly, trigger, misfire_grace_s=MISFIRE_GRACE_S)
