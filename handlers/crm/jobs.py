"""The nightly reconciliation of CRM-owned tags as a durable scheduler job.

At start-up every instance puts the job ``crm.nightly`` (cron ``[crm] nightly_cron`` in the
playbook's time zone) on the scheduler. Each fire time becomes one ``crm.nightly`` inbox event
keyed by job and fire time, so several instances, or a replay, run it once; ``handlers/crm.py``
then walks every relation a chunk per event, queueing ``mark_tag`` calls through the outbox
with keys of that night's generation, so a crash resumes without redoing finished chunks.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.crm.events import CrmNightly
from handlers.crm.settings import crm_settings
from handlers.crm.tagmap import crm_groups
from scrm.kernel.config import ConfigError, Settings
from scrm.kernel.scheduler import Scheduler, TriggerSpec
from scrm.playbook.models import TagGroup as TagGroupSpec

JOB_KEY = "crm.nightly"
# A service that was down at 02:30 still reconciles when it is back before morning; later than
# this the next night's run is as good.
MISFIRE_GRACE_S = 6 * 3600


def nightly_trigger(settings: Settings) -> TriggerSpec | None:
    """The job's trigger, or None when ``nightly_cron`` is empty; a bad expression names the key."""
    expr = crm_settings(settings).nightly_cron.strip()
    if not expr:
        return None
    trigger = TriggerSpec(type="cron", expr=expr, timezone=settings.playbook.timezone)
    try:
        trigger.build()
    except ValueError as exc:
        raise ConfigError(f"crm.nightly_cron (env SCRM_CRM__NIGHTLY_CRON): {expr!r}: {exc}") from None
    return trigger


async def register_nightly(session: AsyncSession, scheduler: Scheduler, settings: Settings,
                           tag_groups: Mapping[str, TagGroupSpec] | None) -> bool:
    """Put (or disable) the nightly job (``Scheduler.keep_job``); returns whether it is enabled.

    Off when ``nightly_cron`` is empty or the tag map (``tag_groups``, None without a playbook)
    has no CRM-owned group: there is nothing to reconcile.
    """
    trigger = nightly_trigger(settings)  # checked even when off: a bad expression is named
    if not crm_groups(tag_groups or {}):
        trigger = None
    return await scheduler.keep_job(session, JOB_KEY, CrmNightly, trigger, misfire_grace_s=MISFIRE_GRACE_S)
