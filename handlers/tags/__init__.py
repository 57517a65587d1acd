"""The corp tag catalog: WeCom's tag groups and tags mirrored as they change."""

from __future__ import annotations

from .feature import FEATURE
from .handlers import router

__all__ = ["FEATURE", "router"]
