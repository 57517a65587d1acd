"""The materials page (/console/materials): the library with its compliance state, rendered as the
customer sees it.

``GET /console/materials`` lists every material of the running playbook: title, channels, who
approved it and when, how long it is valid, and its state today (approved, expiring within
:data:`EXPIRING_DAYS` days, expired, unapproved). ``GET /console/materials/{id}`` shows one as a
customer would receive it (see :func:`handlers.console.calendar.preview`: today's date, sample
values for the customer and group, marked as samples), with the steps that send it;
``/console/materials/{id}/media`` serves its image or mini program cover from ``materials/``.

The library is the bank's approved content, the same for everyone signed in: it is not scoped
by the viewer's grant (it holds no customer data). Every view is audited all the same.
"""

from __future__ import annotations

import asyncio
from datetime import date
from pathlib import Path
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from handlers.console import audit
from handlers.console.calendar import picture_of, preview
from handlers.console.web import BODIES, page_db, render, runtime_of, today_of, viewer_of
from scrm.playbook import Material

EXPIRING_DAYS = 14
STATE_LABELS = {"approved": "已审批", "expiring": f"{EXPIRING_DAYS}天内到期", "expired": "已过期",
                "unapproved": "未审批"}
CHANNEL_LABELS = {"group": "客户群", "private": "客户单聊", "manager": "客户经理"}
TYPE_LABELS = {"text": "文字", "link": "链接", "miniprogram": "小程序", "image": "图片", "file": "文件",
               "quick_reply": "快捷回复"}


def state_of(m: Material, today: date) -> tuple[str, str]:
    """The compliance state of ``m`` on ``today`` and a line saying why, e.g. ``("expiring", "还剩3天")``."""
    if m.approved is None:
        return "unapproved", "尚未审批，不会发送"
    if m.approved.at > today:
        return "unapproved", f"审批自 {m.approved.at.isoformat()} 起生效，之前不会发送"
    if m.valid_until is None:
        return "approved", "长期有效"
    left = (m.valid_until - today).days
    if left < 0:
        return "expired", f"已于 {m.valid_until.isoformat()} 到期，使用它的步骤会被跳过"
    if left <= EXPIRING_DAYS:
        return "expiring", f"还剩{left}天（{m.valid_until.isoformat()} 为最后一天）"
    return "approved", f"有效至 {m.valid_until.isoformat()}"


def summary(m: Material, today: date, uses: tuple[str, ...]) -> dict[str, Any]:
    """One row of the library (JSON-able)."""
    state, why = state_of(m, today)
    return {"id": m.id, "title": m.title, "type": m.type, "type_label": TYPE_LABELS.get(m.type, m.type),
            "channels": [CHANNEL_LABELS.get(c, c) for c in m.channels],
            "approved_by": m.approved.by if m.approved else None,
            "approved_at": m.approved.at.isoformat() if m.approved else None,
            "valid_until": m.valid_until.isoformat() if m.valid_until else None,
            "state": state, "state_label": STATE_LABELS[state], "why": why, "risk_disclosure": m.risk_disclosure,
            "uses": list(uses)}


def _audit(request: web.Request, db: Any) -> None:
    viewer, runtime = viewer_of(request), runtime_of(request)
    audit.record(db, runtime.clock.now(), viewer.actor, viewer.grant.role.value, "view", request.path_qs,
                 audit.remote_of(request))


async def materials(request: web.Request) -> web.Response:
    runtime = runtime_of(request)
    pb, today = runtime.playbook.current, today_of(runtime)
    async with page_db(request) as db:
        _audit(request, db)
        await db.commit()

    def body() -> str:
        rows = [] if pb is None else [summary(pb.materials[mid], today, pb.material_uses.get(mid, ()))
                                      for mid in sorted(pb.materials)]
        counts = {s: sum(r["state"] == s for r in rows) for s in STATE_LABELS}
        return aiohttp_jinja2.render_string("_materials_body.html", request, {
            "rows": rows, "counts": counts, "labels": STATE_LABELS, "today": today.isoformat(),
            "loaded": pb is not None})

    # The same for every viewer: rendered once per running playbook (the source: a reload is
    # another object) and day (the compliance states are as of today).
    return render(request, "materials.html", {"body": request.config_dict[BODIES].html(("materials", today), pb, body)})


def _material(request: web.Request) -> tuple[Any, Material] | web.Response:
    pb = runtime_of(request).playbook.current
    mid = request.match_info["id"]
    m = pb.materials.get(mid) if pb is not None else None
    if m is None:
        return web.Response(status=404, text=f"no material {mid[:64]!r} in the library\n")
    return pb, m


async def material(request: web.Request) -> web.Response:
    found = _material(request)
    if isinstance(found, web.Response):
        return found
    pb, m = found
    runtime = runtime_of(request)
    today = today_of(runtime)
    async with page_db(request) as db:
        _audit(request, db)
        await db.commit()
    return render(request, "material.html", {"m": summary(m, today, pb.material_uses.get(m.id, ())),
                                             "p": preview(m, pb, today),
                                             "today": today.isoformat()})


async def media(request: web.Request) -> web.StreamResponse:
    found = _material(request)
    if isinstance(found, web.Response):
        return found
    _, m = found
    path = await asyncio.to_thread(_picture_file, Path(runtime_of(request).settings.playbook.materials_dir), m)
    if path is None:
        return web.Response(status=404, text=f"material {m.id!r} has no picture under materials/\n")
    return web.FileResponse(path)


def _picture_file(materials_dir: Path, m: Material) -> Path | None:
    """The picture's file, if it is one inside ``materials_dir``. The path comes from the checked
    playbook, never from the request; resolving still keeps a symlink from leading outside."""
    rel = picture_of(m)
    if rel is None:
        return None
    root = materials_dir.resolve()
    path = (root / rel).resolve()
    return path if path.is_relative_to(root) and path.is_file() else None


def add_routes(app: web.Application) -> None:
    app.router.add_get("/materials", materials)
    app.router.add_get("/materials/{id}", material)
    app.router.add_get("/materials/{id}/media", media)
