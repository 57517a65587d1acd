"""The SOP engine as the service composes it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from handlers.sop.cli import register as register_cli
from handlers.sop.engine import register_jobs as register_sop_jobs
from handlers.sop.events import EVENTS
from handlers.sop.media import ADD_MSG_TEMPLATE, MediaPreparer
from handlers.sop.policy import SendTimeRecheck
from scrm.adapters.wecom.media import StaleMediaRefresher
from scrm.kernel.feature import Feature

from . import models
from .handlers import router

if TYPE_CHECKING:
    from scrm.kernel.service import Runtime


async def register_jobs(runtime: Runtime) -> list[str]:
    """(Re-)create the SOP engine's scheduler jobs from the current playbook."""
    if runtime.playbook.current is None:
        return []
    async with runtime.sessions() as session, session.begin():
        return await register_sop_jobs(session, runtime.scheduler, runtime.playbook.current)


def _outbox(runtime: Runtime) -> None:
    materials = runtime.settings.playbook.materials_dir
    # Mass sends name material files: media ids (valid 3 days) are fetched just before sending;
    # a cached id WeCom no longer knows (40007: a restored database) is uploaded again and the
    # send repeated at once (the queued body keeps the files' names, the same shape welcomes use).
    # A 1:1 product send is checked for suitability and consent once more just before the call.
    runtime.outbox.preparers[ADD_MSG_TEMPLATE] = SendTimeRecheck(runtime.playbook, MediaPreparer(materials))
    runtime.outbox.refreshers[ADD_MSG_TEMPLATE] = StaleMediaRefresher(materials).refresh


FEATURE = Feature(name="sop", router=router, models=models,
                  requires=("campaigns", "compliance", "contacts", "crm", "groups", "radar", "tags"),
                  events=EVENTS, jobs=register_jobs, outbox=_outbox, cli=register_cli)
