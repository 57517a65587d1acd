"""Customer groups: classification into group types, member deltas, caps and QR-pool rotation,
flash-group lifetimes, group welcome templates (``scrm groups``)."""

from __future__ import annotations

from .feature import FEATURE
from .handlers import router

__all__ = ["FEATURE", "router"]
