"""The compliance feature as the service composes it."""

from __future__ import annotations

from collections.abc import Coroutine, Mapping
from typing import TYPE_CHECKING, Any

from handlers.compliance import record
from handlers.compliance.cli import register as register_cli
from handlers.compliance.events import EVENTS
from handlers.compliance.handlers import router
from handlers.compliance.jobs import register_purge
from handlers.compliance.prefs import install_prefs
from handlers.compliance.settings import ComplianceSettings, compliance_settings
from scrm.kernel.feature import Feature

from . import models

if TYPE_CHECKING:
    from scrm.kernel.service import Runtime


def _outbox(runtime: Runtime) -> None:
    """The trail's recorder, on every customer-facing call's way to ``sent``."""
    cfg = compliance_settings(runtime.settings)
    record.install(runtime.outbox, cfg.retain_days_by_kind, cfg.retain_days)


async def _jobs(runtime: Runtime) -> bool:
    """The trail's nightly purge; like every feature's jobs, only for a service running a playbook."""
    if runtime.playbook.current is None:
        return False
    async with runtime.sessions() as session, session.begin():
        return await register_purge(session, runtime.scheduler, runtime.settings)


def _workers(runtime: Runtime) -> Mapping[str, Coroutine[Any, Any, None]]:
    """The archive intake (``[compliance] archive_source``), for a service running a playbook
    (its review rules and quiet hours live there), like every feature's jobs."""
    if compliance_settings(runtime.settings).archive_source == "off" or runtime.playbook.current is None:
        return {}
    from handlers.compliance.archive.intake import intake_for

    return {"compliance-archive": intake_for(runtime).run()}


FEATURE = Feature(name="compliance", router=router, models=models, settings=ComplianceSettings, events=EVENTS,
                  jobs=_jobs, workers=_workers, outbox=_outbox, cli=register_cli, http=install_prefs,
                  requires=("console", "contacts", "crm"))
