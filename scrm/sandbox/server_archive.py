"""会话内容存档 (the finance SDK's ``GetChatData``) over HTTP: ``POST /cgi-bin/finance/getchatdata``.

The real archive is read through WeCom's C library (``libWeWorkFinanceSdk_C``), which talks to a
private endpoint; the sandbox offers the same call as an API so the service's intake can be
tested end to end. What matches WeCom: ``{"seq", "limit"}`` returns the messages after ``seq``
(from ``seq + 1``), at most ``limit`` ≤ 1000 (more is an error), each as
``{seq, msgid, publickey_ver, encrypt_random_key, encrypt_chat_msg}``: a fresh random key per
message, RSA-encrypted (PKCS#1 v1.5, base64) with the corp's public key of version
``publickey_ver`` (a corp rotates its key; older messages keep the version they were archived
under). What is ours: the symmetric encryption of ``encrypt_chat_msg``. WeCom's is internal to
its C library (its ``DecryptData`` takes the random key and returns the message JSON); the
sandbox uses AES-256-GCM keyed by SHA-256 of the random key (:func:`seal` / :func:`open_sealed`),
and the service's sandbox source is the only reader of it.

The archive a tenant holds lives beside its :class:`SandboxState` (:func:`archive_of`); tests
put messages in with :meth:`Archive.add`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import weakref
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from scrm.sandbox.errors import invalid
from scrm.sandbox.params import Json, get_int
from scrm.sandbox.routing import Call, RouteTable
from scrm.sandbox.state import SandboxState

router = RouteTable()
MAX_LIMIT = 1000  # WeCom: "最大值1000条，超过1000条会返回错误"
NONCE_BYTES = 12


def seal(random_key: bytes, plain: bytes) -> str:
    """The sandbox's ``encrypt_chat_msg``: base64(nonce ‖ AES-256-GCM(SHA-256(random_key)))."""
    nonce = os.urandom(NONCE_BYTES)
    return base64.b64encode(nonce + AESGCM(hashlib.sha256(random_key).digest()).encrypt(nonce, plain, None)).decode()


def open_sealed(random_key: bytes, sealed: str) -> bytes:
    """The inverse of :func:`seal` (raises ``cryptography.exceptions.InvalidTag`` for a wrong key)."""
    raw = base64.b64decode(sealed)
    return AESGCM(hashlib.sha256(random_key).digest()).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], None)


@dataclass(frozen=True)
class ArchivedChat:
    """One message as the archive hands it out (encrypted once, when archived)."""

    seq: int
    msgid: str
    publickey_ver: int
    encrypt_random_key: str
    encrypt_chat_msg: str

    def as_json(self) -> Json:
        return {"seq": self.seq, "msgid": self.msgid, "publickey_ver": self.publickey_ver,
                "encrypt_random_key": self.encrypt_random_key, "encrypt_chat_msg": self.encrypt_chat_msg}


@dataclass
class Archive:
    """A corp's archive: its public keys by version, and the messages in ``seq`` order."""

    public_keys: dict[int, RSAPublicKey] = field(default_factory=dict)
    chats: list[ArchivedChat] = field(default_factory=list)

    def set_public_key(self, version: int, key: RSAPublicKey) -> None:
        """The corp uploads a public key (WeCom requires each new version to be higher)."""
        if self.public_keys and version <= max(self.public_keys):
            raise ValueError(f"public key version {version} must be higher than {max(self.public_keys)}")
        self.public_keys[version] = key

    def add(self, message: dict[str, Any], *, key_version: int | None = None) -> ArchivedChat:
        """Archive ``message`` (the JSON ``DecryptData`` gives: msgid, action, from, tolist, roomid,
        msgtime, msgtype, text …) under ``key_version`` (default: the newest key)."""
        version = key_version if key_version is not None else max(self.public_keys)
        random_key = os.urandom(32)
        plain = json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode()
        chat = ArchivedChat(
            seq=len(self.chats) + 1, msgid=str(message["msgid"]), publickey_ver=version,
            encrypt_random_key=base64.b64encode(self.public_keys[version].encrypt(random_key, padding.PKCS1v15()))
            .decode(),
            encrypt_chat_msg=seal(random_key, plain))
        self.chats.append(chat)
        return chat

    def after(self, seq: int, limit: int) -> list[ArchivedChat]:
        return self.chats[max(seq, 0):max(seq, 0) + limit]  # seq n sits at index n - 1


_ARCHIVES: weakref.WeakKeyDictionary[SandboxState, Archive] = weakref.WeakKeyDictionary()


def archive_of(state: SandboxState) -> Archive:
    """The archive of the tenant ``state`` is (empty until a test or the demo fills it)."""
    archive = _ARCHIVES.get(state)
    if archive is None:
        archive = _ARCHIVES[state] = Archive()
    return archive


@router.post("finance/getchatdata")
def get_chat_data(call: Call) -> Json:
    seq = get_int(call.body, "seq", 0, lo=0)
    limit = get_int(call.body, "limit", MAX_LIMIT, lo=1)
    if limit > MAX_LIMIT:
        raise invalid(f"limit must be at most {MAX_LIMIT}")
    return {"chatdata": [c.as_json() for c in archive_of(call.state).after(seq, limit)]}
