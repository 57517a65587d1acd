"""Link tokens: opaque, authenticated, short and deterministic.

A token (v2) is one base64url segment: AES-SIV (RFC 5297) of ``material \\0 sender \\0 customer
\\0 occurrence`` under a key derived (HKDF-SHA256) from the radar signing key. AES-SIV puts a
16-byte synthetic IV in front of the ciphertext; that IV is also the MAC over the whole
plaintext, so one primitive gives all three properties the link needs:

* opaque: a customer forwarding a link reveals neither their external userid, nor the manager's
  userid, nor the welcome code inside the occurrence (v1 carried them base64-readable);
* authenticated: without the key nobody can make, alter or enumerate a token;
* deterministic: minting the same send twice gives the same token (the send is counted once),
  and the IV doubles as the token id (16 bytes, hex).

v1 tokens (``<base64url JSON payload>.<16-byte HMAC-SHA256>``) are still accepted, because
links already sent live on in chats, but never minted. The two formats cannot be confused: a
v2 token has no ``.``.
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

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESSIV
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from handlers.radar.settings import radar_settings
from scrm.kernel.config import Settings

log = logging.getLogger("handlers.radar.tokens")

SIV_BYTES = 16
# Longer tokens are rejected before any decoding work (cheap refusal of junk).
MAX_TOKEN_CHARS = 1200
# v2 plaintext: the four fields joined by NUL, which no id, userid or occurrence contains.
_SEP = "\x00"
_FIELDS = 4
# Domain separation: the AES-SIV key is never the raw signing key (which v1 uses for HMAC).
_HKDF_INFO = b"scrm radar link token v2 aes-siv"
_SIV_KEY_BYTES = 64  # AES-256-SIV: one 256-bit key for the CMAC, one for CTR

V1 = 1
V1_MAC_BYTES = 16

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
    key = radar_settings(settings).signing_key.get_secret_value()
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
def _cipher(key: bytes) -> AESSIV:
    # HKDF and the AES key schedule once per key, not once per click.
    return AESSIV(HKDF(hashes.SHA256(), _SIV_KEY_BYTES, salt=None, info=_HKDF_INFO).derive(key))


def sign(key: bytes, material: str, sender: str, *, customer: str | None = None,
         occurrence: str | None = None) -> str:
    """The opaque token for one send of ``material`` by ``sender``."""
    fields = (material, sender, customer or "", occurrence or "")
    if any(_SEP in f for f in fields):
        raise ValueError("radar token fields cannot contain NUL")
    return _b64(_cipher(key).encrypt(_SEP.join(fields).encode(), None))


def verify(key: bytes, token: str) -> Claims | None:
    """The claims of a genuine token; None for anything malformed, tampered or unknown."""
    # A genuine token is short base64url ASCII: anything else is refused before any work.
    if len(token) > MAX_TOKEN_CHARS or not token.isascii():
        return None
    if "." in token:
        return _verify_v1(key, token)
    try:
        sealed = _unb64(token)
    except binascii.Error:
        return None
    # Only the canonical spelling of the bytes is the token: the decoder skips characters outside
    # its alphabet and ignores the last character's spare bits, which would let altered text pass.
    if len(sealed) <= SIV_BYTES or _b64(sealed) != token:
        return None
    try:
        fields = _cipher(key).decrypt(sealed, None).decode().split(_SEP)
    except (InvalidTag, UnicodeDecodeError):
        return None
    if len(fields) != _FIELDS or not fields[0]:
        return None
    material, sender, customer, occurrence = fields
    return Claims(material, sender, customer or None, occurrence or None, token_id=sealed[:SIV_BYTES].hex())


# ------------------------------------------------------------------ v1 (read only)
@functools.lru_cache(maxsize=8)
def _keyed(key: bytes) -> hmac.HMAC:
    # Keying HMAC hashes the padded key into two states; a copy of the keyed object starts
    # from those states instead of redoing that on every old link's click.
    return hmac.new(key, digestmod=hashlib.sha256)


def _mac_v1(key: bytes, payload: str) -> bytes:
    h = _keyed(key).copy()
    h.update(payload.encode())
    return h.digest()[:V1_MAC_BYTES]


def _verify_v1(key: bytes, token: str) -> Claims | None:
    """A link minted before v2: ``<payload>.<mac>``, the payload a JSON array
    ``[1, material, sender, customer, occurrence]`` (empty strings for absent fields)."""
    payload, sep, mac_text = token.partition(".")
    if not sep or not payload:
        return None
    mac = _mac_v1(key, payload)
    # Constant-time, before parsing anything the sender controls; on the canonical text, since
    # a base64 decoder accepts several spellings of one MAC (it ignores the last char's spare bits).
    if not hmac.compare_digest(mac_text, _b64(mac)):
        return None
    try:
        fields = json.loads(_unb64(payload).decode())
    except (binascii.Error, ValueError):  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        return None
    if not (isinstance(fields, list) and len(fields) == 5 and fields[0] == V1):
        return None
    _, material, sender, customer, occurrence = fields
    if not (isinstance(material, str) and material and isinstance(sender, str) and isinstance(customer, str)
            and isinstance(occurrence, str)):
        return None
    return Claims(material, sender, customer or None, occurrence or None, token_id=mac.hex())
