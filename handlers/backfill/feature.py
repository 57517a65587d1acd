"""The backfill feature as the service composes it."""

from __future__ import annotations

from collections.abc import Coroutine, Mapping
from typing import TYPE_CHECKING, Any

from handlers.backfill.cli import register as register_cli
from handlers.backfill.settings import BackfillSettings, backfill_settings
from scrm.kernel.feature import Feature

from . import models

if TYPE_CHECKING:
    from scrm.kernel.service import Runtime


def _workers(runtime: Runtime) -> Mapping[str, Coroutine[Any, Any, None]]:
    """The first start against a corp adopts it (once; see ``first_start``): only for a service
    running a playbook, like every feature's jobs (not the bare pipeline of kernel tests)."""
    if runtime.playbook.current is None or not backfill_settings(runtime.settings).on_first_start:
        return {}
    from handlers.backfill.first_start import first_start

    return {"backfill-first-start": first_start(runtime)}


FEATURE = Feature(name="backfill", models=models, settings=BackfillSettings,
                  requires=("contacts", "crm", "groups", "staff", "tags"), workers=_workers, cli=register_cli)
