"""The nightly full sync of the directory as a durable scheduler job (``staff.nightly``).

Each fire time becomes one ``staff.sync`` inbox event keyed by job and fire time, so several
instances, or a replay, run it once.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.staff.events import StaffSync
from handlers.staff.settings import staff_settings
from scrm.kernel.config import Settings
from scrm.kernel.scheduler import Scheduler, TriggerSpec

JOB_KEY = "staff.nightly"
# A service that was down at night still syncs when it is back before the working day.
MISFIRE_GRACE_S = 6 * 3600


async def register_nightly(session: AsyncSession, scheduler: Scheduler, settings: Settings) -> bool:
    """Put (or disable, when ``nightly_cron`` is empty) the nightly job (``Scheduler.keep_job``);
    returns whether it is enabled."""
    expr = staff_settings(settings).nightly_cron.strip()
    trigger = TriggerSpec(type="cron", expr=expr, timezone=settings.playbook.timezone) if expr else None
    return await scheduler.keep_job(session, JOB_KEY, StaffSync, trigger, misfire_grace_s=MISFIRE_GRACE_S)
