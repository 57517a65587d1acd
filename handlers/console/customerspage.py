"""The customers pages: ``/console/customers?q=&tag=&manager=&crm_id=&after=`` finds customers
(50 a page, "more" by htmx or a plain link), ``/console/customers/{external_userid}[?before=]``
shows one (attributes, relations and their tags, timeline 100 a page, sends, opens, cards).

Both are scoped on the server (:mod:`handlers.console.customers`) and audited: a search as a
view of its URL, a customer's page with the customer's external_userid as the target. A
customer outside the viewer's scope, or a manager outside it, is 403 (audited); an unknown
customer 404; malformed input 400, each one line."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from aiohttp import web

from handlers.console import audit
from handlers.console.customers import BadSearch, NotFound, customer_detail, filters_of, search
from handlers.console.jobs import zone_of
from handlers.console.scope import ScopeRefused
from handlers.console.web import page_db, refuse, render, runtime_of, viewer_of

OUT_OF_SCOPE = "只能查看与您权限范围内客户经理有过服务关系的客户"


def _clock_text(zone: ZoneInfo) -> Any:
    def local(at: datetime | None) -> str:
        return at.astimezone(zone).strftime("%Y-%m-%d %H:%M") if at is not None else ""
    return local


async def customers(request: web.Request) -> web.Response:
    viewer = viewer_of(request)
    runtime = runtime_of(request)
    try:
        f = filters_of(request.query)
    except BadSearch as exc:
        return web.Response(status=400, text=f"{exc}\n")
    async with page_db(request) as db:
        try:
            page = await search(db, viewer.grant, f, after=request.query.get("after", ""))
        except BadSearch as exc:
            return web.Response(status=400, text=f"{exc}\n")
        except ScopeRefused:
            return await refuse(request, OUT_OF_SCOPE)
        audit.record(db, runtime.clock.now(), viewer.actor, viewer.grant.role.value, "view", request.path_qs,
                     audit.remote_of(request))
        await db.commit()
    query = {k: v for k, v in (("q", f.q), ("tag", f.tag), ("manager", f.manager), ("crm_id", f.crm_id)) if v}
    more = f"/console/customers?{urlencode({**query, 'after': page.after})}" if page.after else ""
    return render(request, "customers.html", {"f": f, "page": page, "more": more})


async def customer(request: web.Request) -> web.Response:
    viewer = viewer_of(request)
    runtime = runtime_of(request)
    external_userid = request.match_info["external_userid"]
    playbook = runtime.playbook.current
    async with page_db(request) as db:
        try:
            detail = await customer_detail(db, viewer.grant, external_userid, playbook=playbook,
                                           before=request.query.get("before", ""))
        except BadSearch as exc:
            return web.Response(status=400, text=f"{exc}\n")
        except NotFound:
            return web.Response(status=404, text=f"no customer {external_userid!r}\n")
        except ScopeRefused:
            return await refuse(request, OUT_OF_SCOPE)
        audit.record(db, runtime.clock.now(), viewer.actor, viewer.grant.role.value, "view", external_userid,
                     audit.remote_of(request), page=request.path_qs)
        await db.commit()
    older = (f"/console/customers/{external_userid}?{urlencode({'before': detail.timeline_before})}"
             if detail.timeline_before else "")
    return render(request, "customer.html", {
        "c": detail, "older": older, "local": _clock_text(ZoneInfo(zone_of(playbook, runtime.settings)))})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/customers", customers)
    app.router.add_get("/customers/{external_userid}", customer)
