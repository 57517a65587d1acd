"""What other features may use of the timeline: writing an entry about a customer, group or
member, and reading them (the sidebar's "what happened")."""

from __future__ import annotations

from .journal import note
from .models import Timeline

__all__ = ["Timeline", "note"]
