"""The cockpit page (驾驶舱), ``/console/cockpit?days=7|30|90[&dept=PATH|&manager=USERID]``: the
figures of :func:`handlers.console.cockpit.cockpit` with the previous period beside them, charts
(ECharts, vendored) each with its numbers in a table, and drill-down from the bank to a branch,
a team and a manager. The scope asked for is intersected with the viewer's grant on the server:
outside it is 403 (audited), a department or manager nobody has is 400."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp_jinja2
from aiohttp import web

from handlers.console import audit
from handlers.console.access import Grant
from handlers.console.cockpit import PERIODS, cockpit
from handlers.console.jobs import zone_of
from handlers.console.livecache import LiveReader
from handlers.console.reasons import LABELS
from handlers.console.scope import BadScope, ScopeRefused
from handlers.console.web import (
    BODIES,
    LIVE,
    VIEWS,
    page_db,
    period_days,
    refuse,
    render,
    runtime_of,
    today_of,
    viewer_of,
)

FIGURE_LABELS = {
    "added": "新增客户", "lost": "流失客户（客户删除）", "removed": "客户经理删除", "net": "净增长",
    "group_joins": "入群", "group_quits": "退群", "group_net": "群净增",
    "reach_customers": "SOP触达客户", "reach_groups": "SOP触达群", "skips": "SOP跳过",
    "tasks_issued": "任务下发", "tasks_done": "任务完成", "tasks_not_relevant": "任务不适用",
    "tasks_escalated": "任务升级", "tasks_median_done_s": "完成用时中位数",
    "radar_sends": "雷达链接发送", "radar_opens": "雷达打开次数", "radar_openers": "打开客户数",
    "radar_open_rate": "打开率",
}


def show(name: str, value: Any) -> str:
    """A figure as people read it (the JSON keeps the exact value)."""
    if value is None:
        return "—"
    if name == "radar_open_rate" or name.startswith("rate"):
        return f"{value * 100:.1f}%"
    if name == "tasks_median_done_s":
        minutes = round(value / 60)
        return f"{minutes // 60}小时{minutes % 60}分" if minutes >= 60 else f"{minutes}分钟"
    return str(value)


def crumbs(grant: Grant, dept: str) -> list[dict[str, str]]:
    """Bank → branch → team links down to ``dept``, only where the viewer may go."""
    out = [{"label": "全行", "dept": ""}] if grant.whole_bank else []
    parts = dept.split("/") if dept else []
    for i in range(len(parts)):
        path = "/".join(parts[:i + 1])
        if grant.covers(path):
            out.append({"label": parts[i], "dept": path})
    return out


async def cockpit_page(request: web.Request) -> web.Response:
    viewer = viewer_of(request)
    runtime = runtime_of(request)
    days = period_days(request)
    if isinstance(days, web.Response):
        return days
    dept, manager = request.query.get("dept", ""), request.query.get("manager", "")
    now = runtime.clock.now()
    zone = zone_of(runtime.playbook.current, runtime.settings)
    reader = LiveReader(request.config_dict[LIVE], runtime.playbook.version)
    async with page_db(request) as db:
        try:
            data = await cockpit(db, viewer.grant, days=days, today=today_of(runtime), now=now,
                                 zone=zone, dept=dept, manager=manager, reader=reader,
                                 views=request.config_dict[VIEWS])
        except ScopeRefused:
            return await refuse(request, "驾驶舱只显示您权限范围内的机构和客户经理")
        except BadScope as exc:
            return web.Response(status=400, text=f"{exc}\n")
        audit.record(db, now, viewer.actor, viewer.grant.role.value, "view", request.path_qs, audit.remote_of(request))
        await db.commit()
    trail = crumbs(viewer.grant, data["scope"]["dept"] or (data["managers"][0]["department"]
                                                         if data["scope"]["manager"] else ""))
    shown_as_of = as_of(reader.as_of, zone)

    def body() -> str:
        return aiohttp_jinja2.render_string("_cockpit_body.html", request, {
            "d": data, "periods": PERIODS, "days": days, "labels": FIGURE_LABELS, "reasons": LABELS, "show": show,
            "crumbs": trail, "chart_json": json.dumps(_charts(data), ensure_ascii=False), "as_of": shown_as_of,
        })

    # The body is the same for everyone shown this very result (a kept one is shared): rendered once.
    key = ("cockpit", days, shown_as_of, tuple((c["label"], c["dept"]) for c in trail))
    return render(request, "cockpit.html", {"body": request.config_dict[BODIES].html(key, data, body)})


def as_of(at: datetime | None, zone: str) -> str:
    """When today's figures were computed, as the bank's wall clock reads it ("" when the period
    has no live day)."""
    return "" if at is None else at.astimezone(ZoneInfo(zone)).strftime("%H:%M")


def _charts(d: dict[str, Any]) -> dict[str, Any]:
    """What the charts draw: the same numbers as the tables beside them."""
    return {
        "daily": {"days": [x["day"][5:] for x in d["daily"]], "added": [x["added"] for x in d["daily"]],
                  "lost": [x["lost"] for x in d["daily"]], "net": [x["net"] for x in d["daily"]]},
        "channels": {"names": [c["channel"] or "（无渠道）" for c in d["channels"]],
                     "added": [c["added"]["current"] for c in d["channels"]],
                     "lost": [c["lost"]["current"] for c in d["channels"]]},
        "skips": {"names": [s["label"] for s in d["skips"]], "current": [s["current"] for s in d["skips"]],
                  "previous": [s["previous"] for s in d["skips"]]},
        "retention": {"weeks": [w["week"][5:] for w in d["retention"]],
                      **{f"d{n}": [None if w[f"d{n}"] is None or w[f"d{n}"]["rate"] is None
                                   else round(w[f"d{n}"]["rate"] * 100, 1) for w in d["retention"]]
                         for n in (1, 7, 30)}},
        "ranking": {"names": [m["name"] for m in d["managers"]], "net": [m["net"] for m in d["managers"]]},
    }


def add_routes(app: web.Application) -> None:
    app.router.add_get("/cockpit", cockpit_page)
