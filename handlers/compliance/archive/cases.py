"""A case per reviewed message that hit a rule, and the alert to the compliance officers.

One case per message (listing every rule it hit; ``rule`` is the first): one message is one
thing to triage. Each officer gets one alert per case — an app message through the outbox with
the idempotency key ``review-case:{seq}:{officer}`` — that names the rule and links to the case,
never quoting the message (archived content is read in the console, where every view is
audited). Alerts wait for the end of quiet hours unless a rule hit is urgent.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.compliance.archive.rules import ReviewRules
from handlers.compliance.models import ReviewCase
from scrm.kernel.config import Settings
from scrm.kernel.notify import tell_member
from scrm.kernel.outbox import Outbox
from scrm.playbook import Playbook
from scrm.playbook.quiet import quiet_until


def alert_key(seq: int, officer: str) -> str:
    return f"review-case:{seq}:{officer}"


async def open_cases(db: AsyncSession, rows: Sequence[dict[str, Any]], rules: ReviewRules, *, now: datetime,
                     outbox: Outbox, settings: Settings, playbook: Playbook | None) -> list[ReviewCase]:
    """Review ``rows`` (``archive_message`` rows, in the caller's transaction): a case and its
    alerts for each one that hits a rule."""
    opened: list[ReviewCase] = []
    for row in rows:
        hits = rules.hits(row["text"])
        if not hits:
            continue
        case = ReviewCase(message_seq=row["seq"], rule=hits[0][0].id, urgent=any(r.urgent for r, _ in hits),
                          hits=[{"rule": r.id, "title": r.title, "matched": m[:200]} for r, m in hits],
                          status="open", assignee="", note="", opened_at=now, updated_at=now)
        db.add(case)
        opened.append(case)
    if not opened:
        return opened
    await db.flush()  # the cases' ids, for the links
    by_seq = {row["seq"]: row for row in rows}
    held = None if playbook is None else quiet_until(playbook, now)
    zone = ZoneInfo(settings.playbook.timezone)
    base = settings.server.public_url.rstrip("/")
    for case in opened:
        row = by_seq[case.message_seq]
        when = row["msgtime"].astimezone(zone).strftime("%m-%d %H:%M")
        text = (f"【合规审查{'·紧急' if case.urgent else ''}】{when} {row['sender']} 的一条会话消息命中规则"
                f"「{case.hits[0]['title']}」，请在控制台处理：{base}/console/cases/{case.id}")
        for officer in rules.officers:
            await tell_member(db, outbox, settings, key=alert_key(case.message_seq, officer), userid=officer,
                              text=text, not_before=None if case.urgent else held,
                              # The member's notice lane goes in order: an urgent alert must not
                              # wait behind a held one, so urgent alerts have a lane of their own.
                              lane=f"urgent:{officer}" if case.urgent else None)
    return opened
