"""The groups feature as the service composes it."""

from __future__ import annotations

from scrm.kernel.feature import Feature

from .cli import register as register_cli
from .handlers import router

FEATURE = Feature(name="groups", router=router, cli=register_cli)
