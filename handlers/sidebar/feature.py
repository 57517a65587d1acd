"""The sidebar feature as the service composes it."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING
from urllib.parse import quote

from aiohttp import web

from handlers.sidebar import actions, identity, pages
from handlers.sidebar.settings import SidebarSettings, sidebar_settings
from handlers.sidebar.web import sidebar_app
from scrm.kernel.feature import Feature

if TYPE_CHECKING:
    from scrm.kernel.service import Runtime

log = logging.getLogger("scrm.sandbox.runner")


def install(app: web.Application, runtime: Runtime) -> None:
    """Mount the chat toolbar page at /sidebar (its own sessions, sign-in and CSRF)."""
    if not sidebar_settings(runtime.settings).enabled:
        return
    sidebar = sidebar_app(runtime)
    for module in (identity, pages, actions):
        module.add_routes(sidebar)
    app.add_subapp("/sidebar", sidebar)


async def _sandbox(runtime: Runtime) -> None:
    """Say how to open the toolbar as a demo manager would see it beside a chat."""
    if not sidebar_settings(runtime.settings).enabled:
        return
    sandbox = runtime.settings.wecom.api_base.rstrip("/")
    page = runtime.settings.server.public_url.rstrip("/") + "/sidebar/"
    log.info("sandbox: chat toolbar on %s/sandbox/webview?target=%s (choose a manager, then a chat)",
             sandbox, quote(page, safe=""))


FEATURE = Feature(name="sidebar", settings=SidebarSettings, http=install, sandbox=_sandbox,
                  requires=("compliance", "console", "contacts", "crm", "groups", "radar", "sop", "tags", "timeline"))
