"""An archived message as the intake stores it: which conversation it belongs to, and the text
the review rules read."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def conversation_of(message: dict[str, Any]) -> str:
    """The group chat's roomid, or the two parties of a one-to-one chat, sorted ("a|b")."""
    room = str(message.get("roomid") or "")
    if room:
        return room[:160]
    tolist = [str(t) for t in message.get("tolist") or []]
    parties = sorted({str(message.get("from") or ""), *tolist[:1]})
    return "|".join(parties)[:160]


def text_of(message: dict[str, Any]) -> str:
    """The words of a message: text, markdown, a link's title and description; "" for media."""
    kind = str(message.get("msgtype") or "")
    body = message.get(kind)
    if not isinstance(body, dict):
        return ""
    if kind in ("text", "markdown"):
        return str(body.get("content") or "")
    if kind == "link":
        return f"{body.get('title') or ''}\n{body.get('description') or ''}".strip()
    return ""


def row_of(message: dict[str, Any], *, seq: int, key_version: int, stored_at: datetime) -> dict[str, Any]:
    """The ``archive_message`` row of a decrypted message (``msgtime`` is milliseconds since the epoch)."""
    msgtime = int(message.get("msgtime") or 0)
    return {"seq": seq, "msgid": str(message.get("msgid") or "")[:128], "conversation": conversation_of(message),
            "action": str(message.get("action") or "send")[:16], "sender": str(message.get("from") or "")[:64],
            "tolist": [str(t) for t in message.get("tolist") or []], "roomid": str(message.get("roomid") or "")[:64],
            "msgtime": datetime.fromtimestamp(msgtime / 1000, UTC), "msgtype": str(message.get("msgtype") or "")[:32],
            "text": text_of(message), "content": message, "key_version": key_version, "stored_at": stored_at}
