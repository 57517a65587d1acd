"""The campaigns feature as the service composes it (A/B experiments on SOP steps, one-off campaigns)."""

from __future__ import annotations

from scrm.kernel.feature import Feature

from . import models
from .checks import check_files
from .cli import register as register_cli
from .sync import sync_experiments

FEATURE = Feature(name="campaigns", models=models, requires=("contacts", "crm", "groups", "radar"),
                  jobs=sync_experiments, cli=register_cli, check=check_files)
