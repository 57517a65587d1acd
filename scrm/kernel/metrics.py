"""``GET /metrics``: Prometheus text exposition of what an operator alerts on.

Backlogs are read from the database (the same numbers on every instance: alert on one series,
not the sum), process state from this instance. Only the unfinished and the failed statuses are
counted: the sent/done history grows without bound and would make every scrape slower; those
counts are in ``scrm inbox stats`` / ``scrm outbox stats``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from aiohttp import web
from sqlalchemy import func, select

from scrm.kernel.models import OUTBOX_UNFINISHED, DueJob, InboxEvent, OutboxAction, ServiceInstance

if TYPE_CHECKING:
    from scrm.kernel.service import Runtime

INBOX_COUNTED = ("pending", "dead")
OUTBOX_COUNTED = (*OUTBOX_UNFINISHED, "failed")
# A job this late has missed its tick: the scheduler is stuck or every instance is down.
OVERDUE_S = 60.0

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class Exposition:
    """Collects metric families and renders them in the text format."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def family(self, name: str, kind: str, help_text: str, samples: Iterable[tuple[Mapping[str, str], float]]) -> None:
        self.lines.append(f"# HELP {name} {help_text}")
        self.lines.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            label_text = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
            self.lines.append(f"{name}{{{label_text}}} {value:g}" if label_text else f"{name} {value:g}")

    def render(self) -> str:
        return "\n".join(self.lines) + "\n"


def _age_s(now: datetime, oldest: datetime | None) -> float:
    if oldest is None:
        return 0.0
    return max(0.0, (now - oldest).total_seconds())


async def collect(runtime: Runtime) -> str:
    now = runtime.clock.now()
    out = Exposition()
    async with runtime.sessions() as session:
        inbox: dict[str, Any] = dict((await session.execute(
            select(InboxEvent.status, func.count()).where(InboxEvent.status.in_(INBOX_COUNTED))
            .group_by(InboxEvent.status))).all())
        inbox_oldest = await session.scalar(select(func.min(InboxEvent.received_at))
                                            .where(InboxEvent.status == "pending"))
        outbox: dict[str, Any] = dict((await session.execute(
            select(OutboxAction.status, func.count()).where(OutboxAction.status.in_(OUTBOX_COUNTED))
            .group_by(OutboxAction.status))).all())
        outbox_oldest = await session.scalar(select(func.min(OutboxAction.created_at))
                                             .where(OutboxAction.status == "pending"))
        overdue = await session.scalar(select(func.count()).select_from(DueJob).where(
            DueJob.enabled.is_(True), DueJob.next_run_at < now - timedelta(seconds=OVERDUE_S)))
        silent_since = now - timedelta(seconds=runtime.settings.liveness.dead_after_s)
        registered = await session.scalar(select(func.count()).select_from(ServiceInstance)) or 0
        beating = await session.scalar(select(func.count()).select_from(ServiceInstance)
                                       .where(ServiceInstance.heartbeat_at >= silent_since)) or 0
    out.family("scrm_inbox_events", "gauge", "Inbox events waiting (pending) or given up on (dead).",
               (({"status": s}, float(inbox.get(s, 0))) for s in INBOX_COUNTED))
    out.family("scrm_inbox_oldest_pending_seconds", "gauge", "Age of the oldest event not yet processed.",
               [({}, _age_s(now, inbox_oldest))])
    out.family("scrm_outbox_actions", "gauge", "Outbox actions not finished, and failed ones.",
               (({"status": s}, float(outbox.get(s, 0))) for s in OUTBOX_COUNTED))
    out.family("scrm_outbox_oldest_pending_seconds", "gauge", "Age of the oldest action not yet sent.",
               [({}, _age_s(now, outbox_oldest))])
    out.family("scrm_scheduler_overdue_jobs", "gauge", f"Enabled jobs more than {OVERDUE_S:g} s past their time.",
               [({}, float(overdue or 0))])
    out.family("scrm_instances", "gauge", "Registered service instances: beating, or silent (about to be taken over).",
               [({"state": "beating"}, float(beating)), ({"state": "silent"}, float(registered - beating))])
    out.family("scrm_worker_up", "gauge", "1 when this instance's background worker runs.",
               (({"worker": name}, 1.0 if alive else 0.0) for name, alive in sorted(runtime.workers_alive().items())))
    out.family("scrm_playbook_loaded", "gauge", "1 when a valid playbook is loaded.",
               [({}, 1.0 if runtime.playbook.current is not None else 0.0)])
    playbook = runtime.playbook
    out.family("scrm_playbook_info", "gauge", "The running playbook's version (a hash of its YAML files).",
               [({"version": playbook.version}, 1.0)])
    out.family("scrm_playbook_reload_failed", "gauge",
               "1 when the last reload was refused: the files on disk are not what runs.",
               [({}, 1.0 if playbook.reload_failed else 0.0)])
    for name, help_text, samples in playbook.gauges():
        out.family(name, "gauge", help_text, samples)
    return out.render()


def metrics_view(runtime: Runtime) -> Callable[[web.Request], Awaitable[web.Response]]:
    """``GET /metrics`` for ``runtime``."""

    async def view(request: web.Request) -> web.Response:
        body = await collect(runtime)
        return web.Response(body=body.encode(), headers={"Content-Type": CONTENT_TYPE})

    return view
