"""The membership feature as the service composes it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from handlers.membership.cli import problems
from handlers.membership.cli import register as register_cli
from handlers.membership.events import EVENTS
from handlers.membership.jobs import register_nightly
from handlers.membership.settings import MembershipSettings
from scrm.kernel.feature import Feature, settings_only

from . import models
from .handlers import router
from .http import install_pages
from .redeem import install as install_redeem

if TYPE_CHECKING:
    from scrm.kernel.service import Runtime


async def _jobs(runtime: Runtime) -> bool:
    """The nightly lapse and review, only for a service running a playbook (not the bare pipeline
    of kernel tests and benchmarks)."""
    if runtime.playbook.current is None:
        return False
    async with runtime.sessions() as session, session.begin():
        return await register_nightly(session, runtime.scheduler, runtime.settings)


def _outbox(runtime: Runtime) -> None:
    install_redeem(runtime.outbox)


FEATURE = Feature(name="membership", router=router, models=models, settings=MembershipSettings,
                  requires=("compliance", "contacts", "crm", "radar", "sop", "tags", "timeline"), after=("crm",),
                  events=EVENTS, http=install_pages, jobs=_jobs, outbox=_outbox, cli=register_cli,
                  check=settings_only(problems))
