"""Conversation-review cases (会话存档): the list for triage, one case with its message in
context, and the officer's decision (dismiss or escalate).

Archived content is for compliance officers, and auditors read-only (``Grant.sees_archive``);
anyone else asking is refused with 403, and the refusal is audited. Every view of the list or
of a case is audited too, and so is every decision — in the same transaction as the decision.
The compliance tables are read through ``handlers.compliance.api`` only.
"""

from __future__ import annotations

from aiohttp import web

from handlers.compliance.api import DECISIONS, STATUSES, case_counts, case_in_context, list_cases, triage_case
from handlers.console import audit
from handlers.console.web import page_db, refuse, render, runtime_of, viewer_of

NO_ACCESS = "会话存档与合规审查案件仅对合规专员和审计员开放"
STATUS_LABELS = {"open": "待处理", "dismissed": "已排除", "escalated": "已上报"}


async def cases(request: web.Request) -> web.Response:
    viewer = viewer_of(request)
    if not viewer.grant.sees_archive:
        return await refuse(request, NO_ACCESS)
    status, rule = request.query.get("status", "open"), request.query.get("rule", "")[:64]
    if status not in (*STATUSES, "all"):
        return web.Response(status=400, text=f"status must be one of {', '.join((*STATUSES, 'all'))}\n")
    runtime = runtime_of(request)
    async with page_db(request) as db:
        lines = await list_cases(db, status="" if status == "all" else status, rule=rule)
        counts = await case_counts(db)
        audit.record(db, runtime.clock.now(), viewer.actor, viewer.grant.role.value, "view", request.path_qs,
                     audit.remote_of(request))
        await db.commit()
    return render(request, "cases.html", {"lines": lines, "counts": counts, "status": status, "rule": rule,
                                          "statuses": STATUSES, "labels": STATUS_LABELS})


def _case_id(request: web.Request) -> int | web.Response:
    try:
        return int(request.match_info["id"])
    except ValueError:
        return web.Response(status=400, text="case id must be a number\n")


async def case(request: web.Request) -> web.Response:
    viewer = viewer_of(request)
    if not viewer.grant.sees_archive:
        return await refuse(request, NO_ACCESS)
    case_id = _case_id(request)
    if isinstance(case_id, web.Response):
        return case_id
    runtime = runtime_of(request)
    async with page_db(request) as db:
        found = await case_in_context(db, case_id)
        # The attempt is audited whether or not the case exists: asking is a view of the archive.
        audit.record(db, runtime.clock.now(), viewer.actor, viewer.grant.role.value, "view_case", f"case:{case_id}",
                     audit.remote_of(request), found=found is not None)
        await db.commit()
    if found is None:
        return web.Response(status=404, text=f"no case {case_id}\n")
    return render(request, "case.html", {"c": found, "labels": STATUS_LABELS})


async def decide(request: web.Request) -> web.StreamResponse:
    viewer = viewer_of(request)
    if not viewer.grant.may_triage:
        return await refuse(request, "只有合规专员可以处理合规审查案件")
    decision = request.match_info["decision"]
    if decision not in DECISIONS:
        raise web.HTTPNotFound()
    case_id = _case_id(request)
    if isinstance(case_id, web.Response):
        return case_id
    form = await request.post()
    note = str(form.get("note", ""))[:2000]
    runtime = runtime_of(request)
    now = runtime.clock.now()
    async with runtime.sessions() as db, db.begin():
        changed = await triage_case(db, case_id, decision, by=viewer.actor, at=now, note=note)
        audit.record(db, now, viewer.actor, viewer.grant.role.value, f"case_{decision}", f"case:{case_id}",
                     audit.remote_of(request), changed=changed)
    if not changed:
        return web.Response(status=409, text=f"case {case_id} is not open (decided already, or no such case)\n")
    raise web.HTTPSeeOther(f"/console/cases/{case_id}")


def add_routes(app: web.Application) -> None:
    app.router.add_get("/cases", cases)
    app.router.add_get("/cases/{id}", case)
    app.router.add_post("/cases/{id}/{decision}", decide)
