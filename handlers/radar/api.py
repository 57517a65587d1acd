"""What other features may use of the radar: minting tracked links for what they send, and
counting each send for the open rate; the send and click tables (the console's roll-ups count them)."""

from __future__ import annotations

from .events import RadarClickEvent
from .links import SURVEY_PATH, LinkMaker, record_send
from .models import RadarClick, RadarSend

__all__ = ["LinkMaker", "RadarClick", "RadarSend", "record_send"]
# The membership ledger earns on a customer opening a material.
__all__ += ["RadarClickEvent"]
# The feedback form answers a survey material's link at SURVEY_PATH + the same token.
__all__ += ["SURVEY_PATH"]
