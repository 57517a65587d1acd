"""The SOP engine: runs the playbook's group calendars, 1:1 paths and key-event reminders —
time slots, task cards and their buttons, snoozes, escalations, carry-over, follow-up, the
daily compliance notice (``scrm sop``)."""

from __future__ import annotations

from .feature import FEATURE
from .handlers import router

__all__ = ["FEATURE", "router"]
