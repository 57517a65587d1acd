"""The groups feature as the service composes it."""

from __future__ import annotations

from scrm.kernel.feature import Feature

from . import models
from .cli import register as register_cli
from .events import EVENTS
from .handlers import router

FEATURE = Feature(name="groups", router=router, models=models, requires=("contacts", "radar"), events=EVENTS,
                  cli=register_cli)
