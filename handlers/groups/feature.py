"""The groups feature as the service composes it."""

from __future__ import annotations

from scrm.kernel.feature import Feature

from .handlers import router

FEATURE = Feature(name="groups", router=router)
