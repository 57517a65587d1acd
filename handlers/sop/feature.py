"""The SOP engine as the service composes it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from handlers.campaigns.api import ADD_MOMENT_TASK, campaigns_in_force, load_campaigns
from handlers.sop.cli import register as register_cli
from handlers.sop.engine import register_jobs as register_sop_jobs
from handlers.sop.events import EVENTS
from handlers.sop.media import ADD_MSG_TEMPLATE, MediaPreparer
from handlers.sop.policy import SendTimeRecheck
from scrm.adapters.wecom.media import StaleMediaRefresher
from scrm.kernel.feature import Feature
from scrm.playbook.issues import PlaybookError

from . import models
from .handlers import router

if TYPE_CHECKING:
    from scrm.kernel.service import Runtime


async def register_jobs(runtime: Runtime) -> list[str]:
    """(Re-)create the SOP engine's scheduler jobs from the current playbook (and campaigns)."""
    pb = runtime.playbook.current
    if pb is None:
        return []
    async with runtime.sessions() as session, session.begin():
        # The campaign files as they are now (the campaigns feature stores them after this runs);
        # broken files: the campaigns last stored, which stay in force.
        try:
            slots = {ch.at for c in load_campaigns(runtime.settings.playbook.sop_dir, pb) for ch in c.channels}
        except PlaybookError:
            slots = (await campaigns_in_force(session)).slot_times()
        return await register_sop_jobs(session, runtime.scheduler, pb, slots)


def _outbox(runtime: Runtime) -> None:
    materials = runtime.settings.playbook.materials_dir
    # Mass sends name material files: media ids (valid 3 days) are fetched just before sending;
    # a cached id WeCom no longer knows (40007: a restored database) is uploaded again and the
    # send repeated at once (the queued body keeps the files' names, the same shape welcomes use).
    # A 1:1 product send is checked for suitability and consent once more just before the call.
    runtime.outbox.preparers[ADD_MSG_TEMPLATE] = SendTimeRecheck(runtime.playbook, MediaPreparer(materials))
    runtime.outbox.refreshers[ADD_MSG_TEMPLATE] = StaleMediaRefresher(materials).refresh
    # A campaign's Moments post names its image (or link cover) file the same way; its ids come
    # from media/upload_attachment (the only ones add_moment_task takes).
    runtime.outbox.preparers[ADD_MOMENT_TASK] = MediaPreparer(materials, moments=True)


FEATURE = Feature(name="sop", router=router, models=models,
                  requires=("campaigns", "compliance", "contacts", "crm", "groups", "radar", "tags"),
                  events=EVENTS, jobs=register_jobs, outbox=_outbox, cli=register_cli)
