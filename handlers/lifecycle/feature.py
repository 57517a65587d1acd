"""The lifecycle feature as the service composes it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from handlers.lifecycle.cli import problems
from handlers.lifecycle.cli import register as register_cli
from handlers.lifecycle.events import EVENTS
from handlers.lifecycle.jobs import register_nightly
from handlers.lifecycle.settings import LifecycleSettings
from scrm.kernel.feature import Feature, settings_only

from . import models
from .handlers import router

if TYPE_CHECKING:
    from scrm.kernel.service import Runtime


async def _jobs(runtime: Runtime) -> bool:
    """The nightly scoring; like every feature's jobs, only for a service running a playbook (its
    segments and stages live there)."""
    if runtime.playbook.current is None:
        return False
    async with runtime.sessions() as session, session.begin():
        return await register_nightly(session, runtime.scheduler, runtime.settings)


FEATURE = Feature(name="lifecycle", router=router, models=models, settings=LifecycleSettings,
                  requires=("contacts", "crm", "radar", "sop", "timeline"), after=("crm",),
                  events=EVENTS, jobs=_jobs, cli=register_cli, check=settings_only(problems))
