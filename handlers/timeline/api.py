"""What other features may use of the timeline: writing an entry about a customer, group or member."""

from __future__ import annotations

from .journal import note

__all__ = ["note"]
