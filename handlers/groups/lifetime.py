"""Group lifetimes: an event group (活动快闪群, ``lifetime_days``) reminds its owner when it is due.

The reminder is a one-off scheduler job (``due_job``, a date trigger) created with the group;
when it fires the groups handler checks the group is still open before telling the owner, so
a group dismissed early simply gets nothing. Job and message keys are per chat, so re-reads
and replays never remind twice.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.groups.events import GroupLifetimeDue
from scrm.kernel.scheduler import Scheduler, TriggerSpec

# A reminder the service could not deliver on time is still useful for a few days.
MISFIRE_GRACE_S = 3 * 86400


def job_key(chat_id: str) -> str:
    return f"group_lifetime:{chat_id}"


async def schedule(session: AsyncSession, scheduler: Scheduler, chat_id: str, created_at: datetime,
                   days: int) -> datetime:
    """Arm the reminder ``days`` after ``created_at``; returns when it fires."""
    due = created_at + timedelta(days=days)
    await scheduler.put_job(session, job_key(chat_id), GroupLifetimeDue, TriggerSpec(type="date", at=due),
                            payload={"chat_id": chat_id, "subject": ["group", chat_id]},
                            misfire_grace_s=MISFIRE_GRACE_S)
    return due
