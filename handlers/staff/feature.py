"""The staff feature as the service composes it."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from handlers.staff.cli import register as register_cli
from handlers.staff.directory import apply_snapshot
from handlers.staff.events import EVENTS
from handlers.staff.http import install as install_http
from handlers.staff.jobs import register_nightly
from handlers.staff.settings import StaffSettings
from handlers.staff.sync import read_directory
from scrm.kernel.feature import Feature

from . import models
from .handlers import router

if TYPE_CHECKING:
    from scrm.kernel.service import Runtime

log = logging.getLogger("scrm.sandbox.runner")


async def _jobs(runtime: Runtime) -> bool:
    """Put the nightly directory sync (``[staff] nightly_cron``, in the playbook's time zone) on
    the scheduler; like every feature's jobs, only for a service running a playbook (not the bare
    pipeline of kernel tests and benchmarks)."""
    if runtime.playbook.current is None:
        return False
    async with runtime.sessions() as session, session.begin():
        return await register_nightly(session, runtime.scheduler, runtime.settings)


async def _sandbox(runtime: Runtime) -> None:
    """Read the sandbox tenant's directory, as `scrm staff sync` would against WeCom: the demo
    then greets with the managers' names, and an unanswered card reaches their team lead."""
    snapshot = await read_directory(runtime.wecom)
    async with runtime.sessions() as session, session.begin():
        report = await apply_snapshot(session, snapshot, runtime.clock.now())
    log.info("sandbox: %s", report.summary("staff directory synced"))


# The member table is contacts' (welcomes and cards read names and team leads from it); the HR
# push is signed and read like every CRM push (crm's api).
FEATURE = Feature(name="staff", router=router, models=models, settings=StaffSettings, requires=("contacts", "crm"),
                  events=EVENTS, http=install_http, jobs=_jobs, cli=register_cli, sandbox=_sandbox)
