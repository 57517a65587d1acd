"""HMAC authentication of the CRM's HTTP pushes (and of our webhook calls to the CRM).

Signature = hex(HMAC-SHA256(secret, f"{timestamp}\\n{body}")), sent in ``X-Scrm-Signature``
with the Unix time in ``X-Scrm-Timestamp``. Signing the timestamp with the body and refusing
timestamps outside the replay window stops a captured request from being replayed later.
"""

from __future__ import annotations

import hashlib
import hmac

TIMESTAMP_HEADER = "X-Scrm-Timestamp"
SIGNATURE_HEADER = "X-Scrm-Signature"


class AuthError(Exception):
    """The request is not from the CRM (or not now); ``status`` is the HTTP answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def sign(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"\n" + body, hashlib.sha256)
    return mac.hexdigest()


def headers(secret: str, timestamp: int, body: bytes) -> dict[str, str]:
    """Headers for a signed request (the CRM's client, our webhook, tests)."""
    ts = str(timestamp)
    return {TIMESTAMP_HEADER: ts, SIGNATURE_HEADER: sign(secret, ts, body), "Content-Type": "application/json"}


def verify(secret: str, timestamp: str | None, signature: str | None, body: bytes, now: float,
           window_s: int) -> None:
    """Raise :class:`AuthError` unless the signature is right and the timestamp fresh."""
    if not secret:
        raise AuthError(503, "CRM API disabled: set crm.hmac_secret")
    if not timestamp or not signature:
        raise AuthError(401, f"missing {TIMESTAMP_HEADER} or {SIGNATURE_HEADER} header")
    try:
        ts = int(timestamp)
    except ValueError:
        raise AuthError(400, f"{TIMESTAMP_HEADER} must be Unix seconds") from None
    # Check the signature first: an attacker learns nothing about the window from the answer.
    if not hmac.compare_digest(sign(secret, timestamp, body), signature.strip().lower()):
        raise AuthError(401, "bad signature")
    if abs(now - ts) > window_s:
        raise AuthError(401, f"stale timestamp: {int(now - ts)} s from server time, window {window_s} s")
