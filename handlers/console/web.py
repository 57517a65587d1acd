"""The console's web application, mounted at ``/console``: sessions, the sign-in gate, CSRF,
and rendering. Pages live in their own modules and only see a signed-in :class:`Viewer`.

Every route but the sign-in ones needs a signed-in session; a GET without one is sent to the
sign-in page, anything else gets 401. A session's grant is looked up again on every request,
so removing someone from the access file ends their access at the next click. Every POST
carries the session's CSRF token (form field ``csrf_token`` or header ``X-CSRF-Token``), or is
refused with 403 and audited.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp_jinja2
from aiohttp import web
from aiohttp_session import Session, get_session, session_middleware
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.console import audit
from handlers.console.access import LOCAL_ADMIN, ROLE_LABELS, Grant, Role
from handlers.console.calendar import PreviewCache
from handlers.console.cockpit import PERIODS
from handlers.console.effectstore import LiveParts
from handlers.console.fragments import Fragments
from handlers.console.holder import AccessHolder
from handlers.console.livecache import LiveCache
from handlers.console.sessions import DatabaseStorage
from handlers.console.settings import console_settings, cookie_is_secure
from handlers.console.taskcounts import TaskCounts
from handlers.console.viewcache import ViewCache
from scrm.kernel.page_templates import setup_pages
from scrm.kernel.static_urls import static_urls
from scrm.playbook.quiet import local_day

if TYPE_CHECKING:
    from scrm.kernel.service import Runtime

HERE = Path(__file__).parent
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
# Routes reachable without a session (the sign-in itself, and the vendored static files).
PUBLIC = ("/console/login", "/console/static/")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
RUNTIME = web.AppKey("scrm_runtime", object)
ACCESS = web.AppKey("scrm_console_access", AccessHolder)
STORAGE = web.AppKey("scrm_console_storage", DatabaseStorage)
LIVE = web.AppKey("scrm_console_live", LiveCache)  # today's cockpit figures, kept a short while
EFFECT_LIVE = web.AppKey("scrm_console_effect_live", LiveParts)  # the effect page's live part, as LIVE
VIEWS = web.AppKey("scrm_console_views", ViewCache)  # whole cockpit results, while their inputs hold
EFFECT_VIEWS = web.AppKey("scrm_console_effect_views", ViewCache)  # whole effect results, as VIEWS
TASK_COUNTS = web.AppKey("scrm_console_task_counts", TaskCounts)  # task cards per manager, as LIVE
PREVIEWS = web.AppKey("scrm_console_previews", PreviewCache)  # the calendar's material previews
BODIES = web.AppKey("scrm_console_bodies", Fragments)  # their rendered bodies, while the result is the same


@dataclass(frozen=True)
class Viewer:
    """The signed-in person, as every page sees them."""

    actor: str  # WeCom userid, or LOCAL_ADMIN
    name: str
    grant: Grant
    csrf: str

    @property
    def role_label(self) -> str:
        return ROLE_LABELS[self.grant.role]


VIEWER = web.RequestKey("scrm_console_viewer", Viewer)
PAGE_DB = web.RequestKey("scrm_console_page_db", AsyncSession)  # a GET's one database session (the gate's)


class ConsoleStorage(DatabaseStorage):
    """The sessions' storage, reading the sign-in's row on the page's own database session
    when the gate opened one (:data:`PAGE_DB`)."""

    async def load_session(self, request: web.Request) -> Session:
        return await self.load_with(request.get(PAGE_DB), request)


@asynccontextmanager
async def page_db(request: web.Request) -> AsyncIterator[AsyncSession]:
    """The page's database session: the one the gate read the sign-in on (a GET), else a new one.
    The page commits its audit row on it as before; the gate closes it after the page."""
    db = request.get(PAGE_DB)
    if db is not None:
        yield db
        return
    async with runtime_of(request).sessions() as own:
        yield own


def runtime_of(request: web.Request) -> Runtime:
    return request.config_dict[RUNTIME]  # type: ignore[return-value]


def viewer_of(request: web.Request) -> Viewer:
    return request[VIEWER]  # set by the gate: every route but sign-in is behind it


def today_of(runtime: Runtime) -> date:
    """The bank's date now (the playbook's time zone): the pages' periods end on it."""
    playbook, now = runtime.playbook.current, runtime.clock.now()
    return local_day(playbook, now) if playbook is not None else now.date()


def period_days(request: web.Request) -> int | web.Response:
    """``?days=`` (default 30), or the one-line 400 to answer."""
    try:
        days = int(request.query.get("days", "30"))
    except ValueError:
        days = 0
    if days not in PERIODS:
        return web.Response(status=400, text=f"days must be one of {', '.join(map(str, PERIODS))}\n")
    return days


def csrf_token(session: Session) -> str:
    token = session.get("csrf")
    if not isinstance(token, str):
        token = session["csrf"] = secrets.token_urlsafe(24)
    return token


def render(request: web.Request, template: str, context: dict[str, Any], *, status: int = 200) -> web.Response:
    viewer = request.get(VIEWER)
    return aiohttp_jinja2.render_template(template, request, {"viewer": viewer, **context}, status=status)


async def _audit_now(request: web.Request, actor: str, role: str, action: str, target: str = "",
                     **detail: Any) -> None:
    runtime = runtime_of(request)
    async with runtime.sessions() as db, db.begin():
        audit.record(db, runtime.clock.now(), actor, role, action, target, audit.remote_of(request), **detail)


def forbidden(request: web.Request, what: str) -> web.Response:
    return render(request, "error.html", {"title": "无权访问", "message": what}, status=403)


async def refuse(request: web.Request, what: str) -> web.Response:
    """403 for a signed-in viewer asking for what their role does not allow (audited)."""
    viewer = viewer_of(request)
    await _audit_now(request, viewer.actor, viewer.grant.role.value, "forbidden", request.path)
    return forbidden(request, what)


@web.middleware
async def gate(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Sign-in, grant and CSRF checks before any console route.

    A signed-in GET (a page view) reads its session row and the page on one database session:
    one pool checkout — and one pre-ping — a view, not one for the sign-in and another for the
    page (the sidebar's gate does the same)."""
    if (request.method in ("GET", "HEAD") and not request.path.startswith(PUBLIC)
            and request.cookies.get(request.config_dict[STORAGE].cookie_name)):
        async with runtime_of(request).sessions() as db:
            request[PAGE_DB] = db
            return await _checked(request, handler)
    return await _checked(request, handler)


async def _checked(request: web.Request, handler: Handler) -> web.StreamResponse:
    session = await get_session(request)
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        sent = request.headers.get(CSRF_HEADER, "")
        if not sent and request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
            sent = str((await request.post()).get(CSRF_FIELD, ""))
        expected = session.get("csrf")
        if not isinstance(expected, str) or not hmac.compare_digest(sent.encode(), expected.encode()):
            await _audit_now(request, str(session.get("actor", "")), str(session.get("role", "")), "csrf_refused",
                             request.path)
            return web.Response(status=403, text="CSRF token missing or wrong; reload the page and try again\n")
    if request.path.startswith(PUBLIC):
        return await handler(request)
    viewer = _viewer(request, session)
    if viewer is None:
        if request.method == "GET" and not request.headers.get("HX-Request"):
            raise web.HTTPSeeOther("/console/login")
        return web.Response(status=401, text="not signed in\n")
    request[VIEWER] = viewer
    request.config_dict[STORAGE].keep_alive(session)
    return await handler(request)


def _viewer(request: web.Request, session: Session) -> Viewer | None:
    actor = session.get("actor")
    if not isinstance(actor, str) or not actor:
        return None
    if actor == LOCAL_ADMIN:
        grant: Grant | None = Grant(LOCAL_ADMIN, Role.OPS_ADMIN)
    else:
        grant = request.config_dict[ACCESS].current().grant_of(actor)
    if grant is None:  # removed from the access file since signing in
        session.invalidate()
        return None
    return Viewer(actor, str(session.get("name") or actor), grant, csrf_token(session))


def console_app(runtime: Runtime) -> web.Application:
    settings = console_settings(runtime.settings)
    storage = ConsoleStorage(runtime.sessions, runtime.clock, idle_s=settings.idle_timeout_s, max_s=settings.max_s,
                            secure=cookie_is_secure(runtime.settings))
    app = web.Application(middlewares=[session_middleware(storage), gate])
    app[RUNTIME] = runtime
    app[ACCESS] = AccessHolder.for_settings(runtime.settings)
    app[STORAGE] = storage
    app[LIVE] = LiveCache(settings.live_cache_s)
    app[EFFECT_LIVE] = LiveParts(settings.live_cache_s)
    app[VIEWS] = ViewCache()
    app[EFFECT_VIEWS] = ViewCache()
    app[TASK_COUNTS] = TaskCounts(settings.live_cache_s)
    app[PREVIEWS] = PreviewCache()
    app[BODIES] = Fragments()
    env = setup_pages(app, HERE / "templates")
    env.globals["csrf_field"] = CSRF_FIELD
    env.globals["static_url"] = static_urls(app)
    app.router.add_static("/static/", HERE / "static", name="static", append_version=True)
    return app
