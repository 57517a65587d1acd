"""Link tokens: a compact base64url payload plus a truncated HMAC-SHA256 of it.

``<payload>.<mac>``: the payload is a JSON array ``[v, material, sender, customer, occurrence]``
(empty strings for absent fields); the MAC is 16 bytes (128 bits) of HMAC-SHA256 with the
radar signing key. Without the key nobody can make a token, and tokens can't be enumerated.
Tokens are deterministic: minting the same send twice gives the same token (one send counted).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import secrets
from dataclasses import dataclass

from scrm.config import Settings

log = logging.getLogger("scrm.radar.tokens")

VERSION = 1
MAC_BYTES = 16
# Longer tokens are rejected before any decoding work (cheap refusal of junk).
MAX_TOKEN_CHARS = 1200

_DEV_KEY = secrets.token_bytes(32)


@dataclass(frozen=True)
class Claims:
    """What a valid token says: which material, who sent it, for which occurrence and customer."""

    material: str
    sender: str
    customer: str | None = None
    occurrence: str | None = None
    token_id: str = ""


def signing_key(settings: Settings) -> bytes:
    """The radar key; derived from the WeCom secrets when not set, else a per-process key.

    A per-process key keeps dev setups working, but their links die with the process: say so.
    """
    key = settings.radar.signing_key.get_secret_value()
    if key:
        return key.encode()
    secret = settings.wecom.secret.get_secret_value() + settings.wecom.encoding_aes_key.get_secret_value()
    if secret:
        return hmac.new(secret.encode(), b"scrm radar link key", hashlib.sha256).digest()
    log.warning("radar.signing_key is not set: tracked links are valid only until restart")
    return _DEV_KEY


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(key: bytes, payload: str) -> bytes:
    return hmac.new(key, payload.encode(), hashlib.sha256).digest()[:MAC_BYTES]


def sign(key: bytes, material: str, sender: str, *, customer: str | None = None,
         occurrence: str | None = None) -> str:
    """A token for one send of ``material`` by ``sender``."""
    fields = [VERSION, material, sender, customer or "", occurrence or ""]
    payload = _b64(json.dumps(fields, ensure_ascii=False, separators=(",", ":")).encode())
    return f"{payload}.{_b64(_mac(key, payload))}"


def verify(key: bytes, token: str) -> Claims | None:
    """The claims of a genuine token; None for anything malformed, tampered or unknown."""
    if len(token) > MAX_TOKEN_CHARS:
        return None
    payload, sep, mac_text = token.partition(".")
    if not sep or not payload:
        return None
    try:
        mac = _unb64(mac_text)
    except (binascii.Error, ValueError):
        return None
    # Constant-time compare before parsing anything the sender controls.
    if not hmac.compare_digest(mac, _mac(key, payload)):
        return None
    try:
        fields = json.loads(_unb64(payload))
    except (binascii.Error, ValueError):
        return None
    if not (isinstance(fields, list) and len(fields) == 5 and fields[0] == VERSION
            and all(isinstance(f, str) for f in fields[1:]) and fields[1]):
        return None
    _, material, sender, customer, occurrence = fields
    return Claims(material, sender, customer or None, occurrence or None, token_id=mac.hex())
