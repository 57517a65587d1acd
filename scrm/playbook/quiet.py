"""Local time under the contact policy: quiet hours and the policy's day."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from .playbook import Playbook


def next_allowed(pb: Playbook, now: datetime) -> datetime:
    """``now``, or the end of the quiet hours when ``now`` falls inside them."""
    tz = ZoneInfo(pb.policy.timezone)
    local = now.astimezone(tz)
    quiet = pb.policy.quiet_hours
    if not quiet.contains(local.time().replace(tzinfo=None)):
        return now
    end = datetime.combine(local.date(), quiet.end, tz)
    if end <= local:
        end += timedelta(days=1)
    return end


def local_day(pb: Playbook, now: datetime) -> date:
    return now.astimezone(ZoneInfo(pb.policy.timezone)).date()


def quiet_until(pb: Playbook | None, now: datetime) -> datetime | None:
    """The end of the contact policy's quiet hours when ``now`` is inside them, else None."""
    if pb is None:
        return None
    allowed = next_allowed(pb, now)
    return allowed if allowed > now else None
