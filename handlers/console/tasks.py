"""The tasks page: task cards per team and manager over a period — issued, open, overdue, done,
not relevant, escalated — within the viewer's scope (a team lead sees their team, a branch
head their branch, ops admins and auditors the bank). The counts are the whole bank's per manager,
kept ``live_cache_s`` (:mod:`handlers.console.taskcounts`); the scope keeps its managers' rows."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from handlers.console import audit
from handlers.console.cockpit import PERIODS
from handlers.console.cockpitpage import as_of
from handlers.console.jobs import zone_of
from handlers.console.taskcounts import STATUSES, within
from handlers.console.web import BODIES, TASK_COUNTS, page_db, period_days, render, runtime_of, today_of, viewer_of


async def tasks(request: web.Request) -> web.Response:
    viewer = viewer_of(request)
    runtime = runtime_of(request)
    days = period_days(request)
    if isinstance(days, web.Response):
        return days
    today = today_of(runtime)
    since = today - timedelta(days=days - 1)
    now = runtime.clock.now()
    async with page_db(request) as db:
        kept = await request.config_dict[TASK_COUNTS].period(db, since, today, now)
        audit.record(db, now, viewer.actor, viewer.grant.role.value, "view", request.path_qs,
                     audit.remote_of(request))
        await db.commit()
    shown_as_of = as_of(kept.at, zone_of(runtime.playbook.current, runtime.settings))

    def body() -> str:
        rows = within(viewer.grant, kept.value)
        teams: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            teams.setdefault(row["department"] or "（未分配部门）", []).append(row)
        totals = {k: sum(int(r[k] or 0) for r in rows) for k in ("issued", *STATUSES, "overdue")}
        return aiohttp_jinja2.render_string("_tasks_body.html", request, {
            "teams": teams, "totals": totals, "days": days, "periods": PERIODS, "since": since.isoformat(),
            "today": today.isoformat(), "as_of": shown_as_of})

    # The same for every viewer of this scope shown these very counts: rendered once.
    key = ("tasks", days, viewer.grant.scope if not viewer.grant.whole_bank else "")
    return render(request, "tasks.html", {"body": request.config_dict[BODIES].html(key, kept, body)})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/tasks", tasks)
