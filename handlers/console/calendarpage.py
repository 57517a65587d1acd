"""The calendar page, ``/console/calendar?days=7|30[&dept=PATH]``: what goes out when over the next
days, from the planner (:mod:`handlers.console.calendar`), day by day, with the number of groups,
customers and task cards each step reaches and each material as the customer will read it.

Counts are those of sends whose sender (group owner, customer's manager) is inside the viewer's
grant, narrowed by ``?dept=``; a department outside the grant is 403 (audited), one nobody has
is 400. The bank-wide plan behind it is cached per playbook version and day for a few minutes;
while a large bank's plan is being computed the page shows the previous one, or says so and
refreshes itself.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from aiohttp import web

from handlers.console import audit
from handlers.console.calendar import CARRIED_LABEL, CalendarCache, calendar_view
from handlers.console.scope import BadScope, ScopeRefused, resolve
from handlers.console.web import refuse, render, runtime_of, today_of, viewer_of

PERIODS = (7, 30)
CACHE = web.AppKey("scrm_console_calendar", CalendarCache)


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
    async with runtime.sessions() as db:
        try:
            scope = await resolve(db, viewer.grant, dept=request.query.get("dept", ""))
        except ScopeRefused:
            return await refuse(request, "日历只显示您权限范围内的机构")
        except BadScope as exc:
            return web.Response(status=400, text=f"{exc}\n")
        audit.record(db, now, viewer.actor, viewer.grant.role.value, "view", request.path_qs, audit.remote_of(request))
        await db.commit()
    data, computed = None, ""
    if pb is not None:
        # One plan of the longest period serves both: the 7-day view is its first week.
        found = await request.config_dict[CACHE].plan(runtime.sessions, pb, runtime.playbook.version,
                                                      today_of(runtime), max(PERIODS), now)
        if found is not None:
            data = calendar_view(found[1], pb, scope, days)
            computed = _local(found[0], pb.policy.timezone)
    return render(request, "calendar.html", {"d": data, "loaded": pb is not None, "days": days, "periods": PERIODS,
                                             "dept": scope.dept, "computed": computed,
                                             "carried_label": CARRIED_LABEL})


def _local(at: datetime, zone: str) -> str:
    return at.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M")


async def _stop_planning(app: web.Application) -> None:
    await app[CACHE].close()


def add_routes(app: web.Application) -> None:
    app[CACHE] = CalendarCache()
    app.on_cleanup.append(_stop_planning)
    app.router.add_get("/calendar", calendar_page)
