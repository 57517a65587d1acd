"""Contacts: a customer adds a client manager (welcome on the 20-second path, channel tags,
the customer mirror), edits, deletions and transfers; channel QR codes (``scrm channels``)."""

from __future__ import annotations

from .feature import FEATURE
from .handlers import router

__all__ = ["FEATURE", "router"]
