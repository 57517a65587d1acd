"""The SOP effect page (SOP效果), ``/console/effect?days=7|30|90[&dept=PATH|&manager=USERID]``: per
SOP and step, the figures of :func:`handlers.console.effect.sop_effect` in a table, and a funnel
chart per SOP (ECharts, vendored) drawing the same numbers as its table. Scoped on the server by
the viewer's grant: asking outside it is 403 (audited), a department or manager nobody has is 400."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from handlers.console import audit
from handlers.console.cockpit import PERIODS
from handlers.console.cockpitpage import as_of
from handlers.console.effect import funnel, sop_effect
from handlers.console.jobs import zone_of
from handlers.console.scope import BadScope, ScopeRefused
from handlers.console.web import (
    BODIES,
    EFFECT_LIVE,
    EFFECT_VIEWS,
    page_db,
    period_days,
    refuse,
    render,
    runtime_of,
    today_of,
    viewer_of,
)

STAGE_LABELS = {"targeted": "目标", "sent": "已发送", "delivered": "已送达", "opened": "已打开", "converted": "已转化"}
KIND_LABELS = {"calendar": "群运营日历", "path": "1对1路径"}
#: The CRM event kinds a goal may name, as people read them.
EVENT_LABELS = {"birthday": "生日", "interaction.call": "电话联系", "interaction.visit": "到店拜访",
                "large_transfer": "大额转账", "manager_change": "更换客户经理", "maturity": "产品到期",
                "risk_expiry": "风险评估到期", "tier_down": "客户等级下降", "tier_up": "客户等级提升"}


async def effect_page(request: web.Request) -> web.Response:
    viewer = viewer_of(request)
    runtime = runtime_of(request)
    days = period_days(request)
    if isinstance(days, web.Response):
        return days
    today = today_of(runtime)
    playbook = runtime.playbook.current
    now = runtime.clock.now()
    zone = zone_of(playbook, runtime.settings)
    async with page_db(request) as db:
        try:
            data = await sop_effect(db, viewer.grant, playbook=playbook, since=today - timedelta(days=days - 1),
                                    until=today, zone=zone,
                                    dept=request.query.get("dept", ""), manager=request.query.get("manager", ""),
                                    kept=request.config_dict[EFFECT_LIVE], now=now, version=runtime.playbook.version,
                                    views=request.config_dict[EFFECT_VIEWS])
        except ScopeRefused:
            return await refuse(request, "SOP效果只显示您权限范围内的机构和客户经理")
        except BadScope as exc:
            return web.Response(status=400, text=f"{exc}\n")
        audit.record(db, now, viewer.actor, viewer.grant.role.value, "view", request.path_qs, audit.remote_of(request))
        await db.commit()
    shown_as_of = as_of(datetime.fromisoformat(data["as_of"]) if "as_of" in data else None, zone)

    def body() -> str:
        return aiohttp_jinja2.render_string("_effect_body.html", request, {
            "d": data, "days": days, "periods": PERIODS, "stages": STAGE_LABELS, "kinds": KIND_LABELS,
            "events": EVENT_LABELS, "as_of": shown_as_of,
            "chart_json": json.dumps(_charts(data), ensure_ascii=False, sort_keys=True),
        })

    # As the cockpit's: the body is the same for everyone shown this very (kept) result.
    key = ("effect", days, shown_as_of, data["scope"]["dept"], data["scope"]["manager"])
    return render(request, "effect.html", {"body": request.config_dict[BODIES].html(key, data, body)})


def _charts(d: dict[str, Any]) -> dict[str, Any]:
    """One funnel per SOP: the stages of its total, the same numbers as the table's total row."""
    return {sop["source"]: [{"name": STAGE_LABELS[stage], "value": value} for stage, value in funnel(sop["total"])]
            for sop in d["sops"]}


def add_routes(app: web.Application) -> None:
    app.router.add_get("/effect", effect_page)
