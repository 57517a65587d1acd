"""The referral feature as the service composes it."""

from __future__ import annotations

from handlers.referral.cli import problems
from handlers.referral.cli import register as register_cli
from scrm.kernel.feature import Feature, settings_only

from . import models
from .handlers import router

# After contacts (the friend's customer row and relation), the CRM (its bindings) and membership
# (a friend's own earning for the same event is posted first; order matters to nobody's figures
# but keeps the ledger's entries in event order).
FEATURE = Feature(name="referral", router=router, models=models,
                  requires=("contacts", "crm", "lifecycle", "membership", "sop", "timeline"),
                  after=("contacts", "crm", "membership"), cli=register_cli, check=settings_only(problems))
