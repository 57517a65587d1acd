"""The audit log page: who signed in, looked at what, and changed what (auditors and ops admins)."""

from __future__ import annotations

from aiohttp import web

from handlers.console import audit
from handlers.console.web import page_db, refuse, render, runtime_of, viewer_of


async def audit_log(request: web.Request) -> web.Response:
    viewer = viewer_of(request)
    if not viewer.grant.sees_audit:
        return await refuse(request, "审计日志仅对审计员和运营管理员开放")
    runtime = runtime_of(request)
    actor = request.query.get("actor", "")[:64]
    async with page_db(request) as db:
        rows = await audit.latest(db, actor=actor)
        audit.record(db, runtime.clock.now(), viewer.actor, viewer.grant.role.value, "view", request.path_qs,
                     audit.remote_of(request))
        await db.commit()
    return render(request, "audit.html", {"rows": rows, "actor": actor})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/audit", audit_log)
