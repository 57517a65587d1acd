"""The tasks page: task cards per team and manager over a period — issued, open, overdue, done,
not relevant, escalated — within the viewer's scope (a team lead sees their team, a branch
head their branch, ops admins and auditors the bank). The scope is applied in the query."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from aiohttp import web
from sqlalchemy import Select, and_, case, func, or_, select

from handlers.console import audit
from handlers.console.access import Grant
from handlers.console.cockpit import PERIODS
from handlers.console.web import page_db, period_days, render, runtime_of, today_of, viewer_of
from handlers.contacts.api import Member
from handlers.sop.api import SopTask

STATUSES = ("open", "snoozed", "done", "not_relevant", "escalated")


def in_scope(grant: Grant) -> Any:
    """The SQL condition "this member is inside the grant's scope" (True for the whole bank)."""
    if grant.whole_bank:
        return True
    return or_(Member.department == grant.scope, Member.department.startswith(grant.scope + "/", autoescape=True))


def task_counts(grant: Grant, since: date, today: date) -> Select[*tuple[Any, ...]]:
    """One row per manager: department, userid, name, then a count per status and overdue.

    The cards are counted per manager first (an index-only scan of the period's cards) and the
    few hundred counts joined to the directory after: grouping the joined cards by department,
    userid and name sorted every card of the period with its manager's text (80 ms of 1,000,000
    customers' 50,000 cards a month, 20 ms this way)."""
    columns = [func.sum(case((SopTask.status == s, 1), else_=0)).label(s) for s in STATUSES]
    overdue = func.sum(case((and_(SopTask.status.in_(("open", "snoozed")), SopTask.day < today), 1), else_=0))
    per_user = (select(SopTask.userid, func.count().label("issued"), *columns, overdue.label("overdue"))
                .where(SopTask.day >= since, SopTask.day <= today)
                .group_by(SopTask.userid).subquery("per_user"))
    return (select(Member.department, per_user.c.userid, Member.name, per_user.c.issued,
                   *(per_user.c[s] for s in STATUSES), per_user.c.overdue)
            .join(Member, Member.userid == per_user.c.userid)
            .where(in_scope(grant))
            .order_by(Member.department, per_user.c.userid))


async def tasks(request: web.Request) -> web.Response:
    viewer = viewer_of(request)
    runtime = runtime_of(request)
    days = period_days(request)
    if isinstance(days, web.Response):
        return days
    today = today_of(runtime)
    since = today - timedelta(days=days - 1)
    async with page_db(request) as db:
        rows = (await db.execute(task_counts(viewer.grant, since, today))).mappings().all()
        audit.record(db, runtime.clock.now(), viewer.actor, viewer.grant.role.value, "view", request.path_qs,
                     audit.remote_of(request))
        await db.commit()
    teams: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        teams.setdefault(row["department"] or "（未分配部门）", []).append(dict(row))
    totals = {k: sum(int(r[k] or 0) for r in rows) for k in ("issued", *STATUSES, "overdue")}
    return render(request, "tasks.html", {"teams": teams, "totals": totals, "days": days, "periods": PERIODS,
                                          "since": since.isoformat(), "today": today.isoformat()})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/tasks", tasks)
