"""The feedback feature as the service composes it."""

from __future__ import annotations

from handlers.feedback.cli import register as register_cli
from handlers.feedback.events import EVENTS
from handlers.feedback.http import install_feedback
from scrm.kernel.feature import Feature

from . import models
from .handlers import router

FEATURE = Feature(name="feedback", router=router, models=models,
                  requires=("contacts", "lifecycle", "radar", "sop", "tags"),
                  events=EVENTS, http=install_feedback, cli=register_cli)
