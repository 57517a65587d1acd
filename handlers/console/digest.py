"""The weekly digest (周报): every team lead and branch head of the access file gets one app
message (a text card) with their scope's key figures of the last full week (Monday to Sunday,
the bank's days) beside the week before — customers added, lost, net, SOP reach, task cards
done of issued, radar open rate — and a link to their cockpit.

Queued through the outbox with the key ``console:digest:<ISO week>:<userid>``, so a rerun, a
replay, a crash or a second instance adds nothing; a run inside the quiet hours
(``sop/policy.yaml``) queues the message to go when they end, as every notice to a member
(:mod:`scrm.kernel.notify`). The figures are the cockpit's (:func:`handlers.console.reports.trend`).
"""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import quote

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.console.access import SCOPED, AccessList, Grant
from handlers.console.reports import trend
from handlers.console.scope import BadScope
from handlers.contacts.api import Member
from scrm.kernel.config import Settings
from scrm.kernel.outbox import PRIORITY_DEFAULT, Outbox
from scrm.playbook import Playbook
from scrm.playbook.quiet import local_day, quiet_until

log = logging.getLogger("handlers.console.digest")

# WeCom's text card: title ≤128 bytes, description ≤512 bytes (longer is cut), button ≤4 characters.
MAX_DESCRIPTION = 512
BUTTON = "查看详情"
LINES = (  # (label, figure[, figure]) of the cockpit
    ("新增客户", "added"), ("流失客户", "lost"), ("净增", "net"), ("SOP触达客户", "reach_customers"),
    ("任务完成/下发", "tasks_done", "tasks_issued"), ("雷达打开率", "radar_open_rate"),
)


def last_full_week(today: date) -> tuple[date, date]:
    """Monday to Sunday of the week before ``today``'s."""
    monday = today - timedelta(days=today.weekday() + 7)
    return monday, monday + timedelta(days=6)


def week_key(monday: date) -> str:
    year, week, _ = monday.isocalendar()
    return f"{year}-W{week:02d}"


def _value(figures: dict[str, dict[str, Any]], names: tuple[str, ...], period: str) -> str:
    values = [figures[n][period] for n in names]
    if names == ("radar_open_rate",):
        return "—" if values[0] is None else f"{values[0] * 100:.1f}%"
    return "/".join(str(v) for v in values)


def card(scope: str, since: date, until: date, figures: dict[str, dict[str, Any]], url: str) -> dict[str, str]:
    """The text card: one line per figure, ``current（前一周 previous）``."""
    rows = [f"{label} {_value(figures, tuple(names), 'current')}（前一周 {_value(figures, tuple(names), 'previous')}）"
            for label, *names in LINES]
    body = "\n".join(rows)
    # The scope's path is the one part of unbounded length: shorten it, never the figures.
    head = scope
    while len(f"{head}\n{body}".encode()) > MAX_DESCRIPTION and len(head) > 1:
        head = "…" + head[2:]
    return {"title": f"上周经营周报 {since:%m.%d}–{until:%m.%d}", "description": f"{head}\n{body}", "url": url,
            "btntxt": BUTTON}


def cockpit_link(settings: Settings, scope: str) -> str:
    return f"{settings.server.public_url.rstrip('/')}/console/cockpit?days=7&dept={quote(scope, safe='')}"


async def queue_digest(session: AsyncSession, outbox: Outbox, settings: Settings, playbook: Playbook,
                       access: AccessList, now: datetime) -> int:
    """Queue this week's digest for every team lead and branch head; returns how many were
    queued (a message already queued for the week counts, and adds nothing)."""
    if access.errors:
        log.warning("weekly digest: the console access file has errors; nobody gets a digest")
        return 0
    zone = playbook.policy.timezone
    since, until = last_full_week(local_day(playbook, now))
    week = week_key(since)
    held = quiet_until(playbook, outbox.clock.now())
    delay_s = max(0.0, (held - outbox.clock.now()).total_seconds()) if held is not None else 0.0
    queued = 0
    for grant in sorted((g for g in access.grants.values() if g.role in SCOPED), key=lambda g: g.userid):
        if not await _present(session, grant):
            continue
        try:
            figures = await trend(session, grant, since, until, zone=zone, now=now)
        except BadScope:
            log.info("weekly digest: %s skipped: nobody in their scope %s", grant.userid, grant.scope)
            continue
        body = {"touser": grant.userid, "msgtype": "textcard", "agentid": settings.wecom.agent_id,
                "textcard": card(grant.scope, since, until, figures, cockpit_link(settings, grant.scope))}
        # The member's notice lane: after their earlier notices, never merged into a text one.
        await outbox.add(session, f"console:digest:{week}:{grant.userid}", "message/send", body,
                         priority=PRIORITY_DEFAULT, lane=f"notice:{grant.userid}", delay_s=delay_s)
        queued += 1
    log.info("weekly digest %s queued for %d member(s)", week, queued,
             extra={"week": week, "held_until": held.isoformat() if held else None})
    return queued


async def _present(session: AsyncSession, grant: Grant) -> bool:
    """Is the lead still on the staff, with a department? (Skipped with a log line otherwise.)"""
    member = await session.get(Member, grant.userid)
    if member is None or member.status != "active":
        log.info("weekly digest: %s skipped: not an active member of the staff directory", grant.userid)
        return False
    if not member.department:
        log.info("weekly digest: %s skipped: no department in the staff directory", grant.userid)
        return False
    return True
