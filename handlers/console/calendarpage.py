"""The calendar page, ``/console/calendar?days=7|30[&dept=PATH]``: what goes out when over the next
days, from the planner (:mod:`handlers.console.calendar`), day by day, with the number of groups,
customers and task cards each step reaches and each material as the customer will read it.

Counts are those of sends whose sender (group owner, customer's manager) is inside the viewer's
grant, narrowed by ``?dept=``; a department outside the grant is 403 (audited), one nobody has
is 400. They are read from the outlook the ``console.outlook`` job stored
(:mod:`handlers.console.outlook`: planned once a day and after each playbook reload), with when
it was computed. Before the job has ever stored one (the first start, while it plans), the page
says so and when the next planning is due, and refreshes itself: a view never plans (a million
customers take minutes), so twenty first views cost twenty reads, not twenty plans.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import aiohttp_jinja2
from aiohttp import web
from sqlalchemy import func, select

from handlers.console import audit, outlook
from handlers.console.calendar import CARRIED_LABEL, calendar_view
from handlers.console.jobs import OUTLOOK_JOB_KEY, OUTLOOK_NOW_JOB_KEY
from handlers.console.scope import BadScope, ScopeRefused, resolve
from handlers.console.web import BODIES, PREVIEWS, page_db, refuse, render, runtime_of, today_of, viewer_of
from scrm.kernel.models import DueJob

PERIODS = (7, 30)


def calendar_days(request: web.Request) -> int | web.Response:
    """``?days=`` (default 30), or the one-line 400 to answer."""
    raw = request.query.get("days", "30")
    if raw not in {str(p) for p in PERIODS}:
        return web.Response(status=400, text=f"days must be one of {', '.join(map(str, PERIODS))}\n")
    return int(raw)


async def calendar_page(request: web.Request) -> web.Response:
    viewer = viewer_of(request)
    runtime = runtime_of(request)
    days = calendar_days(request)
    if isinstance(days, web.Response):
        return days
    pb, now = runtime.playbook.current, runtime.clock.now()
    computed, next_run, stale = "", "", ""
    bodies = request.config_dict[BODIES]
    async with page_db(request) as db:
        try:
            scope = await resolve(db, viewer.grant, dept=request.query.get("dept", ""))
        except ScopeRefused:
            return await refuse(request, "日历只显示您权限范围内的机构")
        except BadScope as exc:
            return web.Response(status=400, text=f"{exc}\n")
        run = None
        if pb is not None:
            zone = pb.policy.timezone
            run = await outlook.latest(db)
            if run is not None:
                computed = _local(run.computed_at, zone)
                if run.version != runtime.playbook.version or run.start != today_of(runtime):
                    stale = "剧本已更新" if run.version != runtime.playbook.version else "日历起始日已过"
            due = await db.scalar(select(func.min(DueJob.next_run_at)).where(
                DueJob.job_key.in_((OUTLOOK_JOB_KEY, OUTLOOK_NOW_JOB_KEY)), DueJob.enabled.is_(True)))
            next_run = _local(due, zone) if due is not None else ""
        # A stored run never changes (a newer one replaces it, under another id), so its body for
        # this scope and the running playbook (kept as the source: a reload is another object, and
        # the previews are its materials) is rendered once; what else the body shows is in the key.
        key = ("calendar", days, scope.dept, tuple(sorted(scope.members.items())),
               None if run is None else (run.id, run.computed_at), runtime.playbook.version, computed, next_run, stale)
        body = bodies.get(key, pb)
        data = None
        if body is None and pb is not None and run is not None:
            data = calendar_view(await outlook.read(db, run, scope, days), pb, scope, days,
                                 previews=request.config_dict[PREVIEWS].of(runtime.playbook.version))
        # Recorded after the reads: a commit hands the connection back, and the reads would take another.
        audit.record(db, now, viewer.actor, viewer.grant.role.value, "view", request.path_qs, audit.remote_of(request))
        await db.commit()
    if body is None:
        body = bodies.put(key, pb, aiohttp_jinja2.render_string("_calendar_body.html", request, {
            "d": data, "loaded": pb is not None, "days": days, "periods": PERIODS, "dept": scope.dept,
            "computed": computed, "next_run": next_run, "stale": stale, "carried_label": CARRIED_LABEL}))
    return render(request, "calendar.html", {"body": body})


def _local(at: datetime, zone: str) -> str:
    return at.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M")


def add_routes(app: web.Application) -> None:
    app.router.add_get("/calendar", calendar_page)
