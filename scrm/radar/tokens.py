"""Link tokens: a compact base64url payload plus a truncated HMAC-SHA256 of it.

``<payload>.<mac>``: the payload is a JSON array ``[v, material, sender, customer, occurrence]``
(empty strings for absent fields); the MAC is 16 bytes (128 bits) of HMAC-SHA256 with the
radar signing key. Without the key nobody can make a token, and tokens can't be enumerated.
Tokens are deterministic: minting the same send twice gives the same token (one send counted).
"""

from __future__ import annotations

import binascii
import functools
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
_warned_dev_key = False


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
    global _warned_dev_key
    if not _warned_dev_key:  # once: every welcome and SOP push makes a LinkMaker
        _warned_dev_key = True
        log.warning("radar.signing_key is not set: tracked links are valid only until restart")
    return _DEV_KEY


# binascii directly: base64's urlsafe helpers add two Python calls per use on the click path.
_TO_URLSAFE = bytes.maketrans(b"+/", b"-_")
_FROM_URLSAFE = bytes.maketrans(b"-_", b"+/")


def _b64(data: bytes) -> str:
    return binascii.b2a_base64(data, newline=False).translate(_TO_URLSAFE).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return binascii.a2b_base64((text + "=" * (-len(text) % 4)).encode().translate(_FROM_URLSAFE))


@functools.lru_cache(maxsize=8)
def _keyed(key: bytes) -> hmac.HMAC:
    # Keying HMAC hashes the padded key into two states; every click would redo that. A copy
    # of the keyed object starts from those states (the click path verifies one token each).
    return hmac.new(key, digestmod=hashlib.sha256)


def _mac(key: bytes, payload: str) -> bytes:
    h = _keyed(key).copy()
    h.update(payload.encode())
    return h.digest()[:MAC_BYTES]


def sign(key: bytes, material: str, sender: str, *, customer: str | None = None,
         occurrence: str | None = None) -> str:
    """A token for one send of ``material`` by ``sender``."""
    fields = [VERSION, material, sender, customer or "", occurrence or ""]
    payload = _b64(json.dumps(fields, ensure_ascii=False, separators=(",", ":")).encode())
    return f"{payload}.{_b64(_mac(key, payload))}"


def verify(key: bytes, token: str) -> Claims | None:
    """The claims of a genuine token; None for anything malformed, tampered or unknown."""
    # A genuine token is short base64url ASCII: anything else is refused before any work.
    if len(token) > MAX_TOKEN_CHARS or not token.isascii():
        return None
    payload, sep, mac_text = token.partition(".")
    if not sep or not payload:
        return None
    mac = _mac(key, payload)
    # Constant-time, before parsing anything the sender controls; on the canonical text, since
    # a base64 decoder accepts several spellings of one MAC (it ignores the last char's spare bits).
    if not hmac.compare_digest(mac_text, _b64(mac)):
        return None
    try:
        fields = json.loads(_unb64(payload).decode())
    except (binascii.Error, ValueError):  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        return None
    if not (isinstance(fields, list) and len(fields) == 5 and fields[0] == VERSION):
        return None
    _, material, sender, customer, occurrence = fields
    if not (isinstance(material, str) and material and isinstance(sender, str) and isinstance(customer, str)
            and isinstance(occurrence, str)):
        return None
    return Claims(material, sender, customer or None, occurrence or None, token_id=mac.hex())
