"""The internal events the SOP engine owns (its ``Feature.events``): all fired by its scheduler
jobs (``due_job.kind`` is the class's KIND).

It also consumes the CRM's key events (:class:`handlers.crm.api.CrmKeyEvent`); one that arrives
in quiet hours comes back after them as :class:`CrmKeyDeferred`.
"""

from __future__ import annotations

from datetime import date, time
from typing import Any, ClassVar

from pydantic import Field, field_serializer

from handlers.crm.api import CrmKeyEvent
from scrm.kernel.events import Internal, Scheduled


def _hhmm(value: time) -> str:
    return f"{value.hour:02d}:{value.minute:02d}" if not value.second else value.isoformat()


class SopDue(Scheduled):
    """A time slot of the playbook is due (job ``sop.due:HH:MM``, daily)."""

    KIND: ClassVar[str] = "sop.due"

    slot: time = Field(serialization_alias="at")  # the slot's local HH:MM
    day: date | None = Field(default=None, serialization_alias="date")  # None: the fire time's local date

    @field_serializer("slot")
    def _slot(self, value: time) -> str:
        return _hhmm(value)


class SopReminderScan(Scheduled):
    """The daily scan for one date-based reminder (job ``sop.reminders:<name>``)."""

    KIND: ClassVar[str] = "sop.reminders"

    reminder: str
    slot: time | None = Field(default=None, serialization_alias="at")

    @field_serializer("slot")
    def _slot(self, value: time | None) -> str | None:
        return _hhmm(value) if value is not None else None


class SopDatedReminder(Scheduled):
    """A dated reminder (maturity N days ahead …) for one customer (job ``sop.reminder:…``)."""

    KIND: ClassVar[str] = "sop.reminder"

    reminder: str
    external_userid: str
    occurrence: str  # the event's date: the card's occurrence key
    extra: dict[str, Any] = Field(default_factory=dict)  # the CRM event's fields, for the card's text


class SopFollowup(Scheduled):
    """Hourly: follow unconfirmed mass sends up (job ``sop.followup``)."""

    KIND: ClassVar[str] = "sop.followup"


class SopComplianceNotice(Scheduled):
    """Daily: the compliance notice to the policy's ops contacts (job ``sop.compliance``)."""

    KIND: ClassVar[str] = "sop.compliance"


class SopSnoozeDue(Scheduled):
    """A snoozed task card is due again."""

    KIND: ClassVar[str] = "sop.snooze"

    task_id: str


class SopEscalateDue(Scheduled):
    """A task card nobody handled in time: tell the team lead."""

    KIND: ClassVar[str] = "sop.escalate"

    task_id: str


class SopCarryDue(Scheduled):
    """A card carried over the daily task limit: its workday has begun."""

    KIND: ClassVar[str] = "sop.carry"

    task_id: str


class CrmKeyDeferred(CrmKeyEvent, Scheduled):
    """A CRM key event that arrived in quiet hours, fired again when they end (same fields)."""

    KIND: ClassVar[str] = "sop.crm_deferred"
    SOURCE: ClassVar[str] = "scheduler"


class SopMomentPoll(Scheduled):
    """A campaign's Moments post is followed up: its job's result, then who published it (dated
    job ``sop.moment:<outbox key>``, put again until the follow-up ends)."""

    KIND: ClassVar[str] = "sop.moment"

    key: str  # the add_moment_task's outbox key


EVENTS: tuple[type[Internal], ...] = (SopDue, SopReminderScan, SopDatedReminder, SopFollowup, SopComplianceNotice,
                                      SopSnoozeDue, SopEscalateDue, SopCarryDue, CrmKeyDeferred, SopMomentPoll)
