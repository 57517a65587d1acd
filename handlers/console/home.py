"""The console's first page: what needs attention now, within the viewer's scope."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy import func, select

from handlers.console import audit
from handlers.console.tasks import in_scope
from handlers.console.web import page_db, render, runtime_of, today_of, viewer_of
from handlers.contacts.api import Member
from handlers.sop.api import SopTask
from scrm.kernel.models import InboxEvent, OutboxAction


async def home(request: web.Request) -> web.Response:
    viewer = viewer_of(request)
    runtime = runtime_of(request)
    today = today_of(runtime)
    async with page_db(request) as db:
        # Open and overdue cards in one pass over the open ones (two counts scanned them twice).
        open_tasks, overdue = (await db.execute(
            select(func.count(), func.count().filter(SopTask.day < today))
            .select_from(SopTask).join(Member, Member.userid == SopTask.userid)
            .where(SopTask.status.in_(("open", "snoozed")), in_scope(viewer.grant)))).one()
        needs_person = None
        if viewer.grant.sees_operations:
            dead = await db.scalar(select(func.count()).select_from(InboxEvent).where(InboxEvent.status == "dead"))
            stuck = await db.scalar(select(func.count()).select_from(OutboxAction).where(
                OutboxAction.status.in_(("unknown", "failed"))))
            needs_person = {"dead": int(dead or 0), "stuck": int(stuck or 0)}
        audit.record(db, runtime.clock.now(), viewer.actor, viewer.grant.role.value, "view", request.path,
                     audit.remote_of(request))
        await db.commit()
    return render(request, "home.html", {"open_tasks": int(open_tasks or 0), "overdue": int(overdue or 0),
                                         "needs_person": needs_person, "scope": viewer.grant.scope or "全行"})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/", home)
