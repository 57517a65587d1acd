"""The retention purge as a durable scheduler job (``compliance.purge``)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.compliance.events import TrailPurge
from handlers.compliance.settings import compliance_settings
from scrm.kernel.config import Settings
from scrm.kernel.scheduler import Scheduler, TriggerSpec

JOB_KEY = "compliance.purge"


async def register_purge(session: AsyncSession, scheduler: Scheduler, settings: Settings) -> bool:
    expr = compliance_settings(settings).purge_cron.strip()
    trigger = TriggerSpec(type="cron", expr=expr, timezone=settings.playbook.timezone) if expr else None
    return await scheduler.keep_job(session, JOB_KEY, TrailPurge, trigger, misfire_grace_s=86400)
