"""A customer's own check-in and quiz links: ``{server.public_url}/m/{token}``.

The token is sealed like the radar's (AES-SIV under a key derived with HKDF from
``[membership] link_key``, or from the WeCom secrets): opaque (whoever the link is forwarded to
cannot read the customer's id), authenticated (nobody can make one for another customer, or
turn a check-in link into a quiz link) and deterministic (the same customer's check-in link is
the same link every day, so a manager may pin it in the chat).

Plaintext: ``kind \\0 customer \\0 ref`` (kind ``checkin`` or ``quiz``, ref the quiz's name).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESSIV
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from scrm.kernel.config import Settings

from .settings import membership_settings

log = logging.getLogger("handlers.membership.links")

PATH_PREFIX = "/m/"
KINDS = ("checkin", "quiz")
MAX_TOKEN_CHARS = 600
_SEP = "\x00"
_HKDF_INFO = b"scrm membership link token v1 aes-siv"
_DEV_KEY = secrets.token_bytes(32)


@dataclass(frozen=True)
class LinkClaims:
    kind: str  # checkin | quiz
    customer: str
    ref: str = ""  # the quiz's name


def _key(settings: Settings) -> bytes:
    key = membership_settings(settings).link_key.get_secret_value()
    if key:
        return key.encode()
    secret = settings.wecom.secret.get_secret_value() + settings.wecom.encoding_aes_key.get_secret_value()
    if secret:
        return hmac.new(secret.encode(), b"scrm membership link key", hashlib.sha256).digest()
    log.warning("no [membership] link_key nor WeCom secrets: links die with this process")
    return _DEV_KEY


def _cipher(key: bytes) -> AESSIV:
    derived = HKDF(algorithm=hashes.SHA256(), length=64, salt=None, info=_HKDF_INFO).derive(key)
    return AESSIV(derived)


class Links:
    """Mints and reads membership links with one configuration."""

    def __init__(self, settings: Settings) -> None:
        self.cipher = _cipher(_key(settings))
        self.base = settings.server.public_url.rstrip("/") + PATH_PREFIX

    def token(self, kind: str, customer: str, ref: str = "") -> str:
        if kind not in KINDS or _SEP in customer + ref:
            raise ValueError(f"cannot make a {kind!r} link for {customer!r}")
        sealed = self.cipher.encrypt(_SEP.join((kind, customer, ref)).encode(), None)
        return base64.urlsafe_b64encode(sealed).rstrip(b"=").decode()

    def link(self, kind: str, customer: str, ref: str = "") -> str:
        return self.base + self.token(kind, customer, ref)

    def claims(self, token: str) -> LinkClaims | None:
        """What a genuine token says; None for anything else (forged, altered, junk)."""
        if not token or len(token) > MAX_TOKEN_CHARS:
            return None
        try:
            sealed = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            parts = self.cipher.decrypt(sealed, None).decode().split(_SEP)
        except (binascii.Error, ValueError, InvalidTag, UnicodeDecodeError):
            return None
        if len(parts) != 3 or parts[0] not in KINDS or not parts[1]:
            return None
        return LinkClaims(*parts)
