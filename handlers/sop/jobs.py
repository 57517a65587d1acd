"""Scheduler wiring: one daily job per distinct SOP time slot, one per dated reminder, follow-up.

Registered from the playbook at start-up and after every reload; jobs of slots the playbook no
longer has are disabled (not deleted: their history stays readable).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from scrm.kernel.events import Internal
from scrm.kernel.models import DueJob
from scrm.kernel.scheduler import Scheduler, TriggerSpec
from scrm.playbook import Playbook

from .events import SopComplianceNotice, SopDue, SopFollowup, SopReminderScan
from .planner import slot_times

PREFIXES = ("sop.due:", "sop.reminders:", "sop.followup", "sop.compliance")
FOLLOWUP_EVERY_S = 3600
# Daily scans (birthday, risk expiry, maturity, no contact) run at the reminder's `at`.
DATED_REMINDERS = ("birthday", "risk_expiry", "maturity", "no_contact")


def _hhmm(at: time) -> str:
    return f"{at.hour:02d}:{at.minute:02d}"


Job = tuple[type[Internal], TriggerSpec, dict[str, Any], int]


def wanted_jobs(pb: Playbook, campaign_slots: Iterable[time] = ()) -> dict[str, Job]:
    """job_key → (event kind, trigger, payload, misfire grace in seconds) for this playbook (and
    the campaigns' channel times: a campaign channel runs in the ``sop.due`` job of its HH:MM)."""
    tz = pb.policy.timezone
    jobs: dict[str, Job] = {}
    slots = slot_times(pb)
    for at in campaign_slots:
        slots.setdefault(at, pb.policy.misfire_grace)
    for at, grace in slots.items():
        trigger = TriggerSpec(type="cron", expr=f"{at.minute} {at.hour} * * *", timezone=tz)
        jobs[f"sop.due:{_hhmm(at)}"] = (SopDue, trigger, {"at": _hhmm(at)}, int(grace.total_seconds()))
    for name, r in pb.reminders.items():
        if r.active and r.on in DATED_REMINDERS:
            trigger = TriggerSpec(type="cron", expr=f"{r.at.minute} {r.at.hour} * * *", timezone=tz)
            jobs[f"sop.reminders:{name}"] = (SopReminderScan, trigger, {"reminder": name, "at": _hhmm(r.at)},
                                             int(pb.policy.misfire_grace.total_seconds()))
    if pb.policy.ops_contacts:
        at = pb.policy.ops_notice_at
        trigger = TriggerSpec(type="cron", expr=f"{at.minute} {at.hour} * * *", timezone=tz)
        jobs["sop.compliance"] = (SopComplianceNotice, trigger, {}, int(pb.policy.misfire_grace.total_seconds()))
    jobs["sop.followup"] = (SopFollowup, TriggerSpec(type="interval", seconds=FOLLOWUP_EVERY_S,
                                                       start=datetime(2026, 1, 1, tzinfo=UTC)), {}, 1800)
    return jobs


async def register_jobs(session: AsyncSession, scheduler: Scheduler, pb: Playbook,
                        campaign_slots: Iterable[time] = ()) -> list[str]:
    """Create/update this playbook's jobs and disable the SOP jobs it no longer has."""
    jobs = wanted_jobs(pb, campaign_slots)
    for key, (kind, trigger, payload, grace) in jobs.items():
        await scheduler.put_job(session, key, kind, trigger, payload=payload, misfire_grace_s=grace)
    for prefix in PREFIXES:
        await session.execute(update(DueJob).where(DueJob.job_key.startswith(prefix),
                                                   DueJob.job_key.not_in(list(jobs)))
                              .values(enabled=False))
    return sorted(jobs)


def slot_of(event: SopDue, tz: str) -> tuple[date, time]:
    """The local (day, HH:MM) a ``sop.due`` event stands for: its ``day`` if given, else the local
    date of its fire time (of its time when no scheduler fired it)."""
    if event.day is not None:
        return event.day, event.slot
    return (event.fire_time or event.at).astimezone(ZoneInfo(tz)).date(), event.slot
