"""The console's first page: what needs attention now, within the viewer's scope."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy import func, select

from handlers.console import audit
from handlers.console.cockpitpage import as_of
from handlers.console.jobs import zone_of
from handlers.console.taskcounts import within
from handlers.console.web import TASK_COUNTS, page_db, render, runtime_of, today_of, viewer_of
from scrm.kernel.models import InboxEvent, OutboxAction


async def home(request: web.Request) -> web.Response:
    viewer = viewer_of(request)
    runtime = runtime_of(request)
    today = today_of(runtime)
    now = runtime.clock.now()
    async with page_db(request) as db:
        kept = await request.config_dict[TASK_COUNTS].open(db, today, now)
        mine = within(viewer.grant, kept.value)
        open_tasks, overdue = sum(r["open"] for r in mine), sum(r["overdue"] for r in mine)
        needs_person = None
        if viewer.grant.sees_operations:
            dead = await db.scalar(select(func.count()).select_from(InboxEvent).where(InboxEvent.status == "dead"))
            stuck = await db.scalar(select(func.count()).select_from(OutboxAction).where(
                OutboxAction.status.in_(("unknown", "failed"))))
            needs_person = {"dead": int(dead or 0), "stuck": int(stuck or 0)}
        audit.record(db, now, viewer.actor, viewer.grant.role.value, "view", request.path,
                     audit.remote_of(request))
        await db.commit()
    return render(request, "home.html", {"open_tasks": open_tasks, "overdue": overdue, "needs_person": needs_person,
                                         "scope": viewer.grant.scope or "全行",
                                         "as_of": as_of(kept.at, zone_of(runtime.playbook.current, runtime.settings))})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/", home)
