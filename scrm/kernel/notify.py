"""App messages to client managers (message/send), always through the outbox.

The outbox adds WeCom's ``enable_duplicate_check`` to every message/send, and the idempotency
key makes a replayed event add nothing, so a manager never gets the same notice twice. Notices
to one member wait in one lane; those due together go out as one message (``merge_notices``).

Quiet hours (``sop/policy.yaml``) cover managers too: a notice raised inside them (a churn, a
radar alert) is queued at once with ``not_before`` = their end (``scrm.playbook.quiet.quiet_until``),
the same rule the SOP engine uses for its own manager messages.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from scrm.kernel.config import Settings
from scrm.kernel.outbox import MERGE, PRIORITY_INTERACTIVE, Outbox


async def tell_member(session: AsyncSession, outbox: Outbox, settings: Settings, *, key: str, userid: str,
                      text: str, priority: int = PRIORITY_INTERACTIVE, not_before: datetime | None = None,
                      lane: str | None = None) -> None:
    """Queue a text app message to one member inside the caller's transaction.

    ``not_before`` (e.g. ``scrm.playbook.quiet.quiet_until``) holds it back: the row is due at that time.
    ``lane`` replaces the member's notice lane: a notice that must not wait behind held ones
    (an urgent compliance alert in quiet hours) goes in a lane of its own.
    """
    body = {"touser": userid, "msgtype": "text", "agentid": settings.wecom.agent_id, "text": {"content": text}}
    # The outbox stamps rows with its own clock: measure the wait on that clock.
    delay_s = max(0.0, (not_before - outbox.clock.now()).total_seconds()) if not_before is not None else 0.0
    # One lane per member: notices go in order, and those waiting when one is sent ride along
    # in it (scrm.kernel.outbox.merge_notices), so a burst never meets WeCom's 30 a minute.
    await outbox.add_action(session, key, "wecom", {"api": "message/send", "body": body, "method": "POST", MERGE: True},
                            priority=priority, delay_s=delay_s, lane=lane or f"notice:{userid}")
