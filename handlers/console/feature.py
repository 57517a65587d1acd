"""The console feature as the service composes it."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from aiohttp import web

from handlers.console import (
    auditpage,
    bi,
    calendarpage,
    casespage,
    cockpitpage,
    customerspage,
    effectpage,
    home,
    materialspage,
    ops,
    segjobs,
    segpage,
    signin,
    tasks,
)
from handlers.console.access import Role
from handlers.console.cli import register as register_cli
from handlers.console.holder import AccessHolder
from handlers.console.jobs import EVENTS, register_jobs, router, zone_of
from handlers.console.settings import ConsoleSettings, console_settings
from handlers.console.web import console_app
from scrm.kernel.feature import Feature

from . import models

if TYPE_CHECKING:
    from scrm.kernel.service import Runtime

log = logging.getLogger("scrm.sandbox.runner")


def install(app: web.Application, runtime: Runtime) -> None:
    """Mount the console at /console (its own middlewares: sessions, sign-in gate, CSRF)."""
    if not console_settings(runtime.settings).enabled:
        return
    console = console_app(runtime)
    for module in (signin, home, ops, tasks, cockpitpage, effectpage, calendarpage, customerspage, materialspage,
                   auditpage, casespage, segpage):
        module.add_routes(console)
    app.add_subapp("/console", console)
    bi.install(app, runtime)


async def _jobs(runtime: Runtime) -> bool:
    """The cockpit's nightly roll-up, the weekly digest, the calendar's outlook and the 客群与会员
    snapshot (``[console] rollup_cron``, ``digest_cron``, ``outlook_cron``, ``segments_cron``, in
    the playbook's time zone; the outlook also at once, since this runs at start and after each
    playbook reload, and the snapshot at once when none is stored); like
    every feature's jobs, only for a service running a playbook."""
    if runtime.playbook.current is None:
        return False
    zone = zone_of(runtime.playbook.current, runtime.settings)
    async with runtime.sessions() as session, session.begin():
        await register_jobs(session, runtime.scheduler, runtime.settings, zone, runtime.playbook.version,
                            runtime.clock.now())
        await segjobs.register(session, runtime.scheduler, runtime.settings, zone, runtime.clock.now())
    return True


async def _sandbox(runtime: Runtime) -> None:
    """Say where the console is, with a link that signs the demo's ops admin in (the sandbox's
    login page stands in for scanning WeCom's QR code)."""
    if not console_settings(runtime.settings).enabled:
        return
    base = runtime.settings.server.public_url.rstrip("/")
    admins = sorted(g.userid for g in AccessHolder.for_settings(runtime.settings).current().grants.values()
                    if g.role is Role.OPS_ADMIN)
    if admins:
        log.info("sandbox: console on %s/console/login/wecom?viewer=%s (signs in %s, an ops admin)",
                 base, admins[0], admins[0])
    else:
        log.info("sandbox: console on %s/console/ (no ops admin in the access file)", base)


FEATURE = Feature(name="console", router=router, models=models, settings=ConsoleSettings,
                  events=EVENTS + segjobs.EVENTS, http=install, jobs=_jobs, cli=register_cli, sandbox=_sandbox,
                  requires=("contacts", "sop", "groups", "radar", "crm", "tags", "timeline", "compliance",
                            "feedback", "lifecycle", "membership"))
