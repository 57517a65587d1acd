"""The 客群与会员 page, ``/console/segments[?dept=PATH|&manager=USERID][&format=json]``: issue 16's
behaviour matrix (segments × stages: customers per cell, the path SOPs covering it, cells with
customers and no SOP highlighted — ``scrm segments matrix`` in the console) and the membership
figures of ``scrm membership report`` (the level pyramid, points outstanding and reserved, level
flows of the last 3 months, the top 10 earners by growth), for the viewer's scope.

Scoped as the cockpit: the viewer's grant, narrowed by ``?dept=`` or ``?manager=``; outside it
403 (audited), a department or manager nobody has 400. A customer counts for the manager of
their earliest active relation. The figures are read from the snapshot the ``console.segments``
job stores each night (:mod:`handlers.console.segstore`), with when it was taken; the SOP
coverage is the running rules' (:func:`handlers.lifecycle.api.frame`). Before any snapshot
(right after install, while the start-up job counts) the page says so and refreshes itself.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web
from sqlalchemy import func, select

from handlers.console import audit, segstore
from handlers.console.cockpitpage import crumbs
from handlers.console.scope import BadScope, Scope, ScopeRefused, child_of, resolve
from handlers.console.segjobs import JOB_KEY, NOW_JOB_KEY
from handlers.console.web import refuse, render, runtime_of, viewer_of
from handlers.contacts.api import customer_names
from handlers.crm.api import EVENT_KINDS
from handlers.lifecycle.api import (
    LIFECYCLE_FILE,
    SEGMENTS_FILE,
    Lifecycle,
    Matrix,
    Segmentation,
    frame,
    load_lifecycle,
    load_segmentation,
)
from handlers.membership.api import Membership, current_membership, pyramid
from scrm.kernel.models import DueJob
from scrm.playbook import Playbook
from scrm.playbook.issues import PlaybookError
from scrm.playbook.rulefile import reloading

DIRECTIONS = {"up": "升级", "down": "降级"}

# The rules, read again only when their file changed (a page view reads none of them otherwise).
_segmentation = reloading(lambda sop_dir, _kinds: load_segmentation(sop_dir), SEGMENTS_FILE)
_lifecycle = reloading(lambda sop_dir, _kinds: load_lifecycle(sop_dir), LIFECYCLE_FILE)


def matrix_view(m: Matrix, cells: dict[tuple[str, str], int]) -> dict[str, Any]:
    """The matrix with the scope's counts: rows of cells, each with its SOPs and whether it is a
    gap (customers and no SOP)."""
    rows: list[dict[str, Any]] = []
    for segment, label in m.rows:
        row: list[dict[str, Any]] = []
        for stage, _ in m.columns:
            n, sops = cells.get((segment, stage), 0), list(m.cover.get((segment, stage), ()))
            row.append({"stage": stage, "count": n, "sops": sops, "gap": bool(n and not sops)})
        rows.append({"segment": segment, "label": label, "cells": row, "total": sum(c["count"] for c in row)})
    columns = [{"stage": s, "label": label, "total": sum(cells.get((r, s), 0) for r, _ in m.rows)}
               for s, label in m.columns]
    return {"columns": columns, "rows": rows, "gaps": sum(c["gap"] for r in rows for c in r["cells"])}


def membership_view(fig: segstore.Figures, rules: Membership, names: dict[str, str]) -> dict[str, Any]:
    """The pyramid (highest level first, shares of all members), points, flows per month and the
    top earners, as the CLI's report shows them."""
    labels = {lv.name: lv.label for lv in rules.levels}
    members = {lv.name: 0 for lv in rules.levels}  # YAML order; unknown (renamed) levels after
    for level, v in fig.levels.items():
        members[level] = v.members
    months = []
    for month in sorted({m for m, *_ in fig.flows}, reverse=True):
        moves: list[dict[str, Any]] = [
            {"direction": d, "from": p, "from_label": labels.get(p, p), "to": lv, "to_label": labels.get(lv, lv),
             "count": n} for (m, d, p, lv), n in sorted(fig.flows.items()) if m == month]
        months.append({"month": month, "ups": sum(x["count"] for x in moves if x["direction"] == "up"),
                       "downs": sum(x["count"] for x in moves if x["direction"] == "down"), "moves": moves})
    return {
        "members": sum(members.values()),
        "pyramid": [{"level": name, "label": label, "members": n, "share": share}
                    for name, label, n, share in pyramid(members, rules)],
        "points_outstanding": sum(v.points for v in fig.levels.values()),
        "points_reserved": sum(v.reserved for v in fig.levels.values()),
        "flows": months,
        "top": [{"external_userid": c, "name": names.get(c, ""), "growth": g, "points": p, "level": lv,
                 "label": labels.get(lv, lv)} for c, g, p, lv in fig.top],
    }


def _rules(pb: Playbook | None, sop_dir: Any) -> tuple[Segmentation, Lifecycle, Membership] | str:
    """The running rules, or why there are none to show (a one-line reason)."""
    if pb is None:
        return "运营手册尚未加载"
    try:
        return _segmentation(sop_dir, ()), _lifecycle(sop_dir, ()), current_membership(sop_dir, EVENT_KINDS)
    except PlaybookError as exc:
        return f"客群或会员规则有误（{len(exc.errors)} 处），请运行 scrm segments check / scrm membership check"


async def segments_page(request: web.Request) -> web.StreamResponse:
    viewer = viewer_of(request)
    runtime = runtime_of(request)
    now, pb = runtime.clock.now(), runtime.playbook.current
    zone = pb.policy.timezone if pb is not None else runtime.settings.playbook.timezone
    data: dict[str, Any] = {"snapshot": None, "matrix": None, "membership": None, "problem": "", "next_run": ""}
    async with runtime.sessions() as db:
        try:
            scope = await resolve(db, viewer.grant, dept=request.query.get("dept", ""),
                                  manager=request.query.get("manager", ""))
        except ScopeRefused:
            return await refuse(request, "客群与会员只显示您权限范围内的机构和客户经理")
        except BadScope as exc:
            return web.Response(status=400, text=f"{exc}\n")
        audit.record(db, now, viewer.actor, viewer.grant.role.value, "view", request.path_qs, audit.remote_of(request))
        await db.commit()
        data["scope"] = {"dept": scope.dept, "manager": scope.manager, "label": scope.label}
        rules = _rules(pb, runtime.settings.playbook.sop_dir)
        run = await segstore.latest(db)
        if isinstance(rules, str):
            data["problem"] = rules
        elif run is not None and pb is not None:
            fig = await segstore.read(db, run, scope)
            seg, lc, membership = rules
            data["snapshot"] = {"day": run.day.isoformat(), "computed_at": _local(run.computed_at, zone),
                                "flows_since": run.since.isoformat()}
            data["matrix"] = matrix_view(frame(seg, lc, pb), dict(fig.cells))
            names = await customer_names(db, [c for c, *_ in fig.top])
            data["membership"] = membership_view(fig, membership, names)
        if run is None:
            due = await db.scalar(select(func.min(DueJob.next_run_at)).where(
                DueJob.job_key.in_((JOB_KEY, NOW_JOB_KEY)), DueJob.enabled.is_(True)))
            data["next_run"] = _local(due, zone) if due is not None else ""
    if request.query.get("format") == "json":
        return web.json_response(data)
    return render(request, "segments.html", {"d": data, "crumbs": crumbs(viewer.grant, _dept_of(scope)),
                                             "below": below(scope), "directions": DIRECTIONS})


def below(scope: Scope) -> list[dict[str, str]]:
    """The drill-down links: the departments one level below the scope, then the managers of
    the scope's own department (every manager of a team with no departments below it)."""
    if scope.manager:
        return []
    depts = sorted({child_of(scope.dept, d) for _, d in scope.members.values()} - {scope.dept})
    out = [{"label": d.rsplit("/", 1)[-1], "dept": d, "manager": ""} for d in depts]
    out += [{"label": name, "dept": "", "manager": userid} for userid, (name, d) in sorted(scope.members.items())
            if d == scope.dept]
    return out


def _dept_of(scope: Scope) -> str:
    """The department the breadcrumbs lead to (a manager's own, for a manager's view)."""
    if scope.manager:
        return scope.members.get(scope.manager, ("", ""))[1]
    return scope.dept


def _local(at: datetime, zone: str) -> str:
    return at.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M")


def add_routes(app: web.Application) -> None:
    app.router.add_get("/segments", segments_page)
