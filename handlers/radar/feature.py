"""The radar feature as the service composes it."""

from __future__ import annotations

from handlers.radar.cli import register as register_cli
from handlers.radar.events import EVENTS
from handlers.radar.http import install_radar
from scrm.kernel.feature import Feature

from . import models
from .handlers import router
from .settings import RadarSettings

FEATURE = Feature(name="radar", router=router, models=models, settings=RadarSettings, requires=("contacts", "tags"),
                  events=EVENTS, http=install_radar, cli=register_cli)
