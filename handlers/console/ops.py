"""The operations page: is the service keeping up, and what needs a person.

Inbox and outbox by status with the age of the oldest waiting row; dead letters with **replay**;
outbox actions in ``unknown`` (sent, but no answer: check WeCom first) with **sent** (it went
out: record it) / **send again** / **cancel**, and ``failed`` ones with send again / cancel;
scheduler jobs past due; the running playbook and its last reload; materials expired or
expiring within two weeks. Ops admins act; auditors look; every action is audited.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from aiohttp import web
from sqlalchemy import func, select

from handlers.console import audit
from handlers.console.web import page_db, refuse, render, runtime_of, today_of, viewer_of
from scrm.kernel.models import DueJob, InboxEvent, OutboxAction

LIST_LIMIT = 100
INBOX_SHOWN = ("pending", "dead")
OUTBOX_SHOWN = ("pending", "sending", "unknown", "failed")
EXPIRING_WITHIN = timedelta(days=14)
# A job this long past its due time with nobody running it is stuck (the scheduler ticks often).
OVERDUE_AFTER = timedelta(minutes=5)


def _age(now: datetime, then: datetime | None) -> str:
    if then is None:
        return "—"
    seconds = max(0, int((now - then).total_seconds()))
    if seconds < 120:
        return f"{seconds} 秒"
    if seconds < 7200:
        return f"{seconds // 60} 分钟"
    if seconds < 172800:
        return f"{seconds // 3600} 小时"
    return f"{seconds // 86400} 天"


async def operations(request: web.Request) -> web.Response:
    viewer = viewer_of(request)
    if not viewer.grant.sees_operations:
        return await refuse(request, "运行状态页面仅对运营管理员和审计员开放")
    runtime = runtime_of(request)
    now = runtime.clock.now()
    async with page_db(request) as db:
        # Only the statuses the page shows: counting every row (done ones pile up by the million)
        # would scan both tables on each view; these come from the status indexes, each table's
        # counts and oldest waiting row in one statement.
        inbox_rows = (await db.execute(
            select(InboxEvent.status, func.count(), func.min(InboxEvent.received_at))
            .where(InboxEvent.status.in_(INBOX_SHOWN)).group_by(InboxEvent.status))).all()
        outbox_rows = (await db.execute(
            select(OutboxAction.status, func.count(), func.min(OutboxAction.created_at))
            .where(OutboxAction.status.in_(OUTBOX_SHOWN)).group_by(OutboxAction.status))).all()
        inbox_counts = {status: n for status, n, _ in inbox_rows}
        outbox_counts = {status: n for status, n, _ in outbox_rows}
        oldest_inbox = min((at for status, _, at in inbox_rows if status == "pending"), default=None)
        oldest_outbox = min((at for status, _, at in outbox_rows if status in ("pending", "sending")), default=None)
        dead = (await db.scalars(select(InboxEvent).where(InboxEvent.status == "dead")
                                 .order_by(InboxEvent.id.desc()).limit(LIST_LIMIT))).all()
        stuck = (await db.scalars(select(OutboxAction).where(OutboxAction.status.in_(("unknown", "failed")))
                                  .order_by(OutboxAction.id.desc()).limit(LIST_LIMIT))).all()
        overdue = (await db.scalars(select(DueJob).where(DueJob.enabled.is_(True),
                                                         DueJob.next_run_at < now - OVERDUE_AFTER)
                                    .order_by(DueJob.next_run_at).limit(LIST_LIMIT))).all()
        audit.record(db, now, viewer.actor, viewer.grant.role.value, "view", request.path, audit.remote_of(request))
        await db.commit()
    return render(request, "ops.html", {
        "inbox": inbox_counts, "outbox": outbox_counts,
        "inbox_age": _age(now, oldest_inbox), "outbox_age": _age(now, oldest_outbox),
        "dead": [_inbox_row(r, now) for r in dead], "stuck": [_outbox_row(r, now) for r in stuck],
        "overdue": [{"key": j.job_key, "kind": j.kind, "late": _age(now, j.next_run_at)} for j in overdue],
        "playbook": {"version": runtime.playbook.version, "reload_failed": runtime.playbook.reload_failed,
                     "errors": list(runtime.playbook.last_errors)},
        "materials": _materials(runtime, today_of(runtime)),
    })


def _inbox_row(row: InboxEvent, now: datetime) -> dict[str, Any]:
    return {"id": row.id, "type": "/".join(x for x in (row.msg_type, row.event, row.change_type) if x),
            "source": row.source, "age": _age(now, row.received_at), "attempts": row.attempts,
            "error": (row.last_error or "")[:300], "status": row.status}


def _outbox_row(row: OutboxAction, now: datetime) -> dict[str, Any]:
    payload = row.payload or {}
    return {"id": row.id, "api": str(payload.get("api") or row.kind), "key": row.idempotency_key[:120],
            "status": row.status, "attempts": row.attempts, "age": _age(now, row.created_at),
            "error": (row.last_error or "")[:300]}


def _materials(runtime: Any, today: date) -> list[dict[str, Any]]:
    playbook = runtime.playbook.current
    if playbook is None:
        return []
    out = []
    for material in playbook.materials.values():
        until = material.valid_until
        if until is not None and until - today <= EXPIRING_WITHIN:
            out.append({"id": material.id, "title": material.title or "", "until": until.isoformat(),
                        "expired": until < today})
    return sorted(out, key=lambda m: (m["until"], m["id"]))


async def _act(request: web.Request, action: str) -> web.StreamResponse:
    viewer = viewer_of(request)
    if not viewer.grant.may_operate:
        return await refuse(request, "只有运营管理员可以操作")
    runtime = runtime_of(request)
    try:
        row_id = int(request.match_info["id"])
    except ValueError:
        return web.Response(status=400, text="id must be a number\n")
    if action == "replay":
        changed = await runtime.inbox.replay([row_id])
    elif action == "retry":
        changed = await runtime.outbox.retry([row_id])
    elif action == "cancel":
        changed = await runtime.outbox.cancel([row_id])
    else:
        changed = await runtime.outbox.mark_sent([row_id], by=viewer.actor)
    target = f"{'inbox' if action == 'replay' else 'outbox'}:{row_id}"
    async with runtime.sessions() as db, db.begin():
        audit.record(db, runtime.clock.now(), viewer.actor, viewer.grant.role.value, action, target,
                     audit.remote_of(request), changed=changed)
    if request.headers.get("HX-Request"):
        text = f"已{_DONE[action]}" if changed else "状态已变化，未操作（请刷新）"
        return web.Response(text=f'<tr><td colspan="7" class="done">#{row_id} {text}</td></tr>',
                            content_type="text/html")
    raise web.HTTPSeeOther("/console/ops")


_DONE = {"replay": "重新投递", "retry": "重新发送", "cancel": "取消", "sent": "记为已发送"}


async def replay(request: web.Request) -> web.StreamResponse:
    return await _act(request, "replay")


async def outbox_action(request: web.Request) -> web.StreamResponse:
    action = request.match_info["action"]
    if action not in ("retry", "cancel", "sent"):
        raise web.HTTPNotFound()
    return await _act(request, action)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/ops", operations)
    app.router.add_post("/ops/inbox/{id}/replay", replay)
    app.router.add_post("/ops/outbox/{id}/{action}", outbox_action)
