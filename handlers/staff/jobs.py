"""The nightly full sync of the directory as a durable scheduler job (``staff.nightly``).

Each fire time becomes one ``staff.sync`` inbox event keyed by job and fire time, so several
instances, or a replay, run it once.
"""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.staff.events import StaffSync
from handlers.staff.settings import staff_settings
from scrm.kernel.config import Settings
from scrm.kernel.models import DueJob
from scrm.kernel.scheduler import Scheduler, TriggerSpec

JOB_KEY = "staff.nightly"
# A service that was down at night still syncs when it is back before the working day.
MISFIRE_GRACE_S = 6 * 3600


async def register_nightly(session: AsyncSession, scheduler: Scheduler, settings: Settings) -> bool:
    """Put (or disable) the nightly job; returns whether it is enabled. An unchanged job is left
    alone (``put_job`` recomputes the next run from now: a restart must not skip tonight's run)."""
    expr = staff_settings(settings).nightly_cron.strip()
    job = await session.scalar(select(DueJob).where(DueJob.job_key == JOB_KEY))
    if not expr:
        if job is not None and job.enabled:
            await session.execute(update(DueJob).where(DueJob.job_key == JOB_KEY).values(enabled=False))
        return False
    trigger = TriggerSpec(type="cron", expr=expr, timezone=settings.playbook.timezone)
    spec = trigger.model_dump(mode="json")
    unchanged = (job is not None and job.enabled and job.kind == StaffSync.KIND and job.trigger == spec
                 and job.misfire_grace_s == MISFIRE_GRACE_S and job.next_run_at is not None)
    if not unchanged:
        await scheduler.put_job(session, JOB_KEY, StaffSync, trigger, misfire_grace_s=MISFIRE_GRACE_S)
    return True
