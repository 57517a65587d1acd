"""Tokens as the previous code (v1) minted them: links already sent must keep working.

Written out with the standard library on purpose, independent of ``handlers.radar.tokens``: the
format is frozen in chats and inboxes, so the test pins it rather than importing it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def sign_v1(key: bytes, material: str, sender: str, *, customer: str | None = None,
            occurrence: str | None = None) -> str:
    """``<base64url JSON [1, material, sender, customer, occurrence]>.<16-byte HMAC-SHA256>``."""
    payload = b64(json.dumps([1, material, sender, customer or "", occurrence or ""], ensure_ascii=False,
                             separators=(",", ":")).encode())
    return f"{payload}.{signed_v1(key, payload)}"


def signed_v1(key: bytes, payload: str) -> str:
    """The v1 MAC text of a payload segment."""
    return b64(hmac.new(key, payload.encode(), hashlib.sha256).digest()[:16])


def wrap_v1(key: bytes, fields: object) -> str:
    """A correctly MACed v1 token around any JSON payload: what a key holder's bug could produce."""
    payload = b64(json.dumps(fields).encode())
    return f"{payload}.{signed_v1(key, payload)}"
