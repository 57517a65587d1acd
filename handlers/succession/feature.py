"""The succession feature as the service composes it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from handlers.succession import calls
from handlers.succession.cli import register as register_cli
from handlers.succession.events import EVENTS, SuccessionSweep
from handlers.succession.http import install as install_http
from handlers.succession.jobs import register_sweep
from handlers.succession.settings import SuccessionSettings
from scrm.kernel.feature import Feature
from scrm.kernel.scheduler import TriggerSpec

from . import models
from .handlers import router

if TYPE_CHECKING:
    from scrm.kernel.service import Runtime

START_JOB = "succession.sweep.start"


async def _jobs(runtime: Runtime) -> bool:
    """The periodic sweep, and one sweep at start (a one-off job due now, so several instances
    run it once): customers of members who left while the service was down, or before it was
    installed, are handed over without waiting for a slot."""
    if runtime.playbook.current is None:
        return False
    now = runtime.clock.now()
    async with runtime.sessions() as session, session.begin():
        enabled = await register_sweep(session, runtime.scheduler, runtime.settings)
        await runtime.scheduler.put_job(session, START_JOB, SuccessionSweep, TriggerSpec(type="date", at=now),
                                        misfire_grace_s=86400)
    return enabled


def _outbox(runtime: Runtime) -> None:
    calls.install(runtime.outbox)


FEATURE = Feature(name="succession", router=router, models=models, settings=SuccessionSettings,
                  requires=("contacts", "crm", "groups", "sop", "timeline"), after=("staff", "contacts"),
                  events=EVENTS, http=install_http, jobs=_jobs, outbox=_outbox, cli=register_cli)
