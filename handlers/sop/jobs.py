"""Scheduler wiring: one daily job per distinct SOP time slot, one per dated reminder, follow-up.

Registered from the playbook at start-up and after every reload; jobs of slots the playbook no
longer has are disabled (not deleted: their history stays readable).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from scrm.kernel.models import DueJob
from scrm.kernel.scheduler import Scheduler, TriggerSpec
from scrm.playbook import Playbook

from .planner import slot_times

DUE_KIND = "sop.due"
REMINDER_KIND = "sop.reminders"
FOLLOWUP_KIND = "sop.followup"
NOTICE_KIND = "sop.compliance"  # the daily compliance notice to the policy's ops_contacts
PREFIXES = ("sop.due:", "sop.reminders:", "sop.followup", "sop.compliance")
FOLLOWUP_EVERY_S = 3600
# Daily scans (birthday, risk expiry, maturity, no contact) run at the reminder's `at`.
DATED_REMINDERS = ("birthday", "risk_expiry", "maturity", "no_contact")


def _hhmm(at: time) -> str:
    return f"{at.hour:02d}:{at.minute:02d}"


def wanted_jobs(pb: Playbook) -> dict[str, tuple[str, TriggerSpec, dict[str, Any], int]]:
    """job_key → (kind, trigger, payload, misfire grace in seconds) for this playbook."""
    tz = pb.policy.timezone
    jobs: dict[str, tuple[str, TriggerSpec, dict[str, Any], int]] = {}
    for at, grace in slot_times(pb).items():
        trigger = TriggerSpec(type="cron", expr=f"{at.minute} {at.hour} * * *", timezone=tz)
        jobs[f"sop.due:{_hhmm(at)}"] = (DUE_KIND, trigger, {"at": _hhmm(at)}, int(grace.total_seconds()))
    for name, r in pb.reminders.items():
        if r.active and r.on in DATED_REMINDERS:
            trigger = TriggerSpec(type="cron", expr=f"{r.at.minute} {r.at.hour} * * *", timezone=tz)
            jobs[f"sop.reminders:{name}"] = (REMINDER_KIND, trigger, {"reminder": name, "at": _hhmm(r.at)},
                                             int(pb.policy.misfire_grace.total_seconds()))
    if pb.policy.ops_contacts:
        at = pb.policy.ops_notice_at
        trigger = TriggerSpec(type="cron", expr=f"{at.minute} {at.hour} * * *", timezone=tz)
        jobs["sop.compliance"] = (NOTICE_KIND, trigger, {}, int(pb.policy.misfire_grace.total_seconds()))
    jobs["sop.followup"] = (FOLLOWUP_KIND, TriggerSpec(type="interval", seconds=FOLLOWUP_EVERY_S,
                                                       start=datetime(2026, 1, 1, tzinfo=UTC)), {}, 1800)
    return jobs


async def register_jobs(session: AsyncSession, scheduler: Scheduler, pb: Playbook) -> list[str]:
    """Create/update this playbook's jobs and disable the SOP jobs it no longer has."""
    jobs = wanted_jobs(pb)
    for key, (kind, trigger, payload, grace) in jobs.items():
        await scheduler.put_job(session, key, kind, trigger, payload=payload, misfire_grace_s=grace)
    for prefix in PREFIXES:
        await session.execute(update(DueJob).where(DueJob.job_key.startswith(prefix),
                                                   DueJob.job_key.not_in(list(jobs)))
                              .values(enabled=False))
    return sorted(jobs)


def slot_of(payload: dict[str, Any], fire_time: datetime | None, tz: str) -> tuple[date, time]:
    """The local (day, HH:MM) a ``sop.due`` event stands for: its fire time, else ``date``/``at``."""
    at = time.fromisoformat(str(payload["at"]))
    if payload.get("date"):
        return date.fromisoformat(str(payload["date"])), at
    assert fire_time is not None
    return fire_time.astimezone(ZoneInfo(tz)).date(), at
