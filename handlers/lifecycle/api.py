"""What other features may use of the lifecycle: the stage-change event, the stored results,
and the CRM attributes it writes (so nobody else writes them)."""

from __future__ import annotations

from .events import StageEntered
from .models import CustomerSegment
from .nightly import MIRRORED

__all__ = ["MIRRORED", "CustomerSegment", "StageEntered"]
