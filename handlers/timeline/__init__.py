"""The timeline: what happened to each customer, group and member, for people to read."""

from __future__ import annotations

from .feature import FEATURE
from .handlers import router

__all__ = ["FEATURE", "router"]
