"""The radar feature as the service composes it."""

from __future__ import annotations

from scrm.cli_radar import register as register_cli
from scrm.kernel.feature import Feature
from scrm.radar.views import install_radar

from .handlers import router

FEATURE = Feature(name="radar", router=router, http=install_radar, cli=register_cli)
