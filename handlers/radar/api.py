"""What other features may use of the radar: minting tracked links for what they send, and
counting each send for the open rate."""

from __future__ import annotations

from .links import LinkMaker, record_send

__all__ = ["LinkMaker", "record_send"]
