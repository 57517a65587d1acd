"""The compliance feature as the service composes it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from handlers.compliance import record
from handlers.compliance.cli import register as register_cli
from handlers.compliance.events import EVENTS
from handlers.compliance.handlers import router
from handlers.compliance.jobs import register_purge
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
    async with runtime.sessions() as session, session.begin():
        return await register_purge(session, runtime.scheduler, runtime.settings)


FEATURE = Feature(name="compliance", router=router, models=models, settings=ComplianceSettings, events=EVENTS,
                  jobs=_jobs, outbox=_outbox, cli=register_cli, requires=("console",))
