"""App messages to client managers (message/send), always through the outbox.

The outbox adds WeCom's ``enable_duplicate_check`` to every message/send, and the idempotency
key makes a replayed event add nothing, so a manager never gets the same notice twice.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from scrm.config import Settings
from scrm.outbox import PRIORITY_INTERACTIVE, Outbox


async def tell_member(session: AsyncSession, outbox: Outbox, settings: Settings, *, key: str, userid: str,
                      text: str, priority: int = PRIORITY_INTERACTIVE) -> None:
    """Queue a text app message to one member inside the caller's transaction."""
    body = {"touser": userid, "msgtype": "text", "agentid": settings.wecom.agent_id, "text": {"content": text}}
    await outbox.add(session, key, "message/send", body, priority=priority)
