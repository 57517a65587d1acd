"""The CRM feature as the service composes it."""

from __future__ import annotations

from collections.abc import Coroutine, Mapping
from typing import TYPE_CHECKING, Any

from handlers.crm.cli import register as register_cli
from handlers.crm.dropfolder import DropFolder
from handlers.crm.events import EVENTS
from handlers.crm.http import install_crm_api
from handlers.crm.jobs import register_nightly
from handlers.crm.settings import CrmSettings, crm_settings
from handlers.crm.webhook import register as register_webhook
from scrm.kernel.feature import Feature

from . import models
from .handlers import router

if TYPE_CHECKING:
    from scrm.kernel.service import Runtime


async def register_jobs(runtime: Runtime) -> bool:
    """Put the nightly tag reconciliation (``[crm] nightly_cron``) on the scheduler, or take it
    off when the tag map has no CRM-owned group."""
    pb = runtime.playbook.current
    async with runtime.sessions() as session, session.begin():
        return await register_nightly(session, runtime.scheduler, runtime.settings,
                                      pb.tag_groups if pb is not None else None)


def _workers(runtime: Runtime) -> Mapping[str, Coroutine[Any, Any, None]]:
    crm = crm_settings(runtime.settings)
    if crm.inbox_dir is None:
        return {}
    folder = DropFolder(crm.inbox_dir, runtime.sessions, runtime.inbox, runtime.clock, poll_s=crm.inbox_poll_s,
                        tiers=crm.tiers)
    return {"crm-dropfolder": folder.run()}


def _outbox(runtime: Runtime) -> None:
    register_webhook(runtime.outbox, crm_settings(runtime.settings))


# After contacts: linking a new contact reads the unionid the contacts handler just mirrored.
FEATURE = Feature(name="crm", router=router, models=models, settings=CrmSettings, requires=("contacts", "tags"),
                  after=("contacts",), events=EVENTS, http=install_crm_api, jobs=register_jobs, workers=_workers,
                  outbox=_outbox, cli=register_cli)
