"""The sidebar's web application, mounted at ``/sidebar``: its own sessions (the console's
database-backed storage under the ``scrm_sidebar`` cookie), the signed-in member, CSRF on every
POST, and rendering.

The toolbar page itself (``/sidebar/``) signs a member in through WeCom OAuth when there is no
session; every other route answers 401 without one (the page's script then reloads the toolbar,
which signs in again, silently inside WeCom). Refusals are one line: JSON ``{"error": …}`` for
the JSON routes and the send/task actions, a short HTML fragment for the panels.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp_jinja2
from aiohttp import web
from aiohttp_session import Session, get_session, session_middleware
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.console.api import CSRF_HEADER, DatabaseStorage, cookie_is_secure, csrf_token
from handlers.sidebar.jsapi import Tickets
from handlers.sidebar.settings import sidebar_settings
from handlers.sidebar.texts import NOT_SIGNED_IN
from scrm.adapters.db.engine import dialect_of
from scrm.kernel.page_templates import setup_pages
from scrm.kernel.static_urls import static_urls

if TYPE_CHECKING:
    from scrm.kernel.service import Runtime

HERE = Path(__file__).parent
COOKIE = "scrm_sidebar"
# Reached without a session: the toolbar page (it starts OAuth), OAuth's return, static files,
# mini program covers (the WeCom client fetches a card's imgUrl without the manager's cookie).
PUBLIC = ("/sidebar/oauth", "/sidebar/static/", "/sidebar/cover/")
PAGE = "/sidebar/"
#: The panels' routes (GET): read-only, on the database session the gate opens (``reader_of``).
PANELS = ("/sidebar/customer/", "/sidebar/data/", "/sidebar/group/")
_dumps = partial(json.dumps, ensure_ascii=False)  # refusals readable as sent

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
RUNTIME = web.AppKey("scrm_sidebar_runtime", object)
STORAGE = web.AppKey("scrm_sidebar_storage", DatabaseStorage)
TICKETS = web.AppKey("scrm_sidebar_tickets", Tickets)


@dataclass(frozen=True)
class Viewer:
    """The signed-in member (a client manager or team lead)."""

    userid: str
    name: str
    csrf: str


VIEWER = web.RequestKey("scrm_sidebar_viewer", Viewer)
READER = web.RequestKey("scrm_sidebar_reader", AsyncSession)


def runtime_of(request: web.Request) -> Runtime:
    return request.config_dict[RUNTIME]  # type: ignore[return-value]


def viewer_of(request: web.Request) -> Viewer:
    return request[VIEWER]  # set by the gate on every route but the public ones


def wants_json(request: web.Request) -> bool:
    return request.path.startswith("/sidebar/data/") or request.method == "POST"


def refuse(request: web.Request, status: int, message: str) -> web.Response:
    """A one-line refusal in the form the route speaks."""
    if wants_json(request) or request.path.startswith("/sidebar/signature"):
        return web.json_response({"error": message}, status=status, dumps=_dumps)
    return render(request, "refused.html", {"message": message}, status=status)


def render(request: web.Request, template: str, context: dict[str, Any], *, status: int = 200) -> web.Response:
    return aiohttp_jinja2.render_template(template, request, {"viewer": request.get(VIEWER), **context},
                                          status=status)


class SidebarStorage(DatabaseStorage):
    """The console's session storage, reading the session row on the panel's own database
    session when the gate opened one (:data:`READER`)."""

    async def load_session(self, request: web.Request) -> Session:
        return await self.load_with(request.get(READER), request)


async def read_only(db: AsyncSession) -> None:
    """Run ``db``'s reads without a transaction on PostgreSQL: no BEGIN and ROLLBACK round trips.

    Under READ COMMITTED each statement takes its own snapshot anyway, so a transaction around a
    panel's reads gave it no consistency it loses here. SQLite's driver begins a transaction only
    before a write, so its reads need nothing."""
    if dialect_of(db) == "postgresql":
        await db.connection(execution_options={"isolation_level": "AUTOCOMMIT"})


def reader_of(request: web.Request) -> AsyncSession:
    """The read-only database session the gate opened for a panel (``PANELS``)."""
    return request[READER]


@web.middleware
async def gate(request: web.Request, handler: Handler) -> web.StreamResponse:
    """CSRF and sign-in checks before any sidebar route.

    A panel (a GET of ``PANELS``) is read on one database session, the sign-in's session row
    included: one pool checkout (and its pre-ping) a panel, not one for the session and another
    for the panel — most of a panel's round trips were that overhead."""
    # Without the cookie there is no session to read and the request is refused (401): no checkout.
    if request.method in ("GET", "HEAD") and request.path.startswith(PANELS) and request.cookies.get(COOKIE):
        async with runtime_of(request).sessions() as db:
            await read_only(db)
            request[READER] = db
            return await _checked(request, handler)
    return await _checked(request, handler)


async def _checked(request: web.Request, handler: Handler) -> web.StreamResponse:
    session = await get_session(request)
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        sent, expected = request.headers.get(CSRF_HEADER, ""), session.get("csrf")
        if not isinstance(expected, str) or not hmac.compare_digest(sent.encode(), expected.encode()):
            return refuse(request, 403, "CSRF token missing or wrong; reload the toolbar and try again")
    if request.path.startswith(PUBLIC):
        return await handler(request)
    actor = session.get("actor")
    if isinstance(actor, str) and actor:
        request[VIEWER] = Viewer(actor, str(session.get("name") or actor), csrf_token(session))
        request.config_dict[STORAGE].keep_alive(session)
    elif request.path != PAGE:
        return refuse(request, 401, NOT_SIGNED_IN)
    return await handler(request)


def sidebar_app(runtime: Runtime) -> web.Application:
    settings = sidebar_settings(runtime.settings)
    storage = SidebarStorage(runtime.sessions, runtime.clock, idle_s=settings.idle_timeout_s, max_s=settings.max_s,
                              secure=cookie_is_secure(runtime.settings), cookie_name=COOKIE, path="/sidebar")
    app = web.Application(middlewares=[session_middleware(storage), gate])
    app[RUNTIME] = runtime
    app[STORAGE] = storage
    app[TICKETS] = Tickets(runtime)
    env = setup_pages(app, HERE / "templates")
    env.globals["static_url"] = static_urls(app)
    app.router.add_static("/static/", HERE / "static", name="static", append_version=True)
    return app
