"""Where archived messages come from: the source interface, and WeCom's finance SDK behind it.

A source does two things the intake cannot do itself: fetch a batch of encrypted messages after
a ``seq`` (WeCom's ``GetChatData(seq, limit)``), and open one message's content once the intake
has decrypted its random key with the corp's private key (WeCom's ``DecryptData``). The RSA step
is documented and the same everywhere, so the intake does it (keys.py); the symmetric step is
internal to WeCom's C library, so each source keeps its own.

The finance SDK is a C library (``libWeWorkFinanceSdk_C.so``) without an official Python
package. :func:`load_sdk_source` imports, at run time, a Python module the bank installs that
wraps it (``[compliance] archive_sdk_module``), with two functions::

    get_chat_data(seq: int, limit: int) -> str | dict   # GetChatData's JSON: {errcode, errmsg, chatdata}
    decrypt_data(random_key: bytes, encrypt_chat_msg: str) -> str | bytes   # DecryptData's JSON

Nothing here requires it: tests and the demo use the sandbox source (sandbox_source.py).
"""

from __future__ import annotations

import asyncio
import importlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol


class ArchiveSourceError(Exception):
    """The source cannot be used or answered nonsense (one line, for the log and the operator)."""


@dataclass(frozen=True)
class EncryptedChat:
    """One entry of GetChatData's ``chatdata``."""

    seq: int
    msgid: str
    publickey_ver: int
    encrypt_random_key: str  # base64 of RSA-PKCS#1 v1.5(random key, the corp's public key of that version)
    encrypt_chat_msg: str


class ArchiveSource(Protocol):
    async def fetch(self, seq: int, limit: int) -> list[EncryptedChat]:
        """The messages after ``seq`` (from ``seq + 1``), at most ``limit``, in ``seq`` order."""
        ...

    def open(self, random_key: bytes, encrypt_chat_msg: str) -> dict[str, Any]:
        """The message JSON (msgid, action, from, tolist, roomid, msgtime, msgtype, text …)."""
        ...


def chats_of(reply: Mapping[str, Any]) -> list[EncryptedChat]:
    """GetChatData's reply as typed entries (a malformed entry is an :class:`ArchiveSourceError`)."""
    if reply.get("errcode", 0) != 0:
        raise ArchiveSourceError(f"GetChatData failed: {reply.get('errcode')} {reply.get('errmsg', '')}".strip())
    out = []
    for entry in reply.get("chatdata") or []:
        try:
            out.append(EncryptedChat(seq=int(entry["seq"]), msgid=str(entry["msgid"]),
                                     publickey_ver=int(entry["publickey_ver"]),
                                     encrypt_random_key=str(entry["encrypt_random_key"]),
                                     encrypt_chat_msg=str(entry["encrypt_chat_msg"])))
        except (KeyError, TypeError, ValueError):
            raise ArchiveSourceError(f"GetChatData returned a malformed entry (keys: {sorted(entry)})") from None
    return out


def as_message(plain: str | bytes) -> dict[str, Any]:
    message = json.loads(plain)
    if not isinstance(message, dict):
        raise ArchiveSourceError("a decrypted archive message is not a JSON object")
    return message


class SdkSource:
    """The finance SDK through the bank's wrapper module (its calls block: run in a thread)."""

    def __init__(self, module: Any) -> None:
        self.module = module

    async def fetch(self, seq: int, limit: int) -> list[EncryptedChat]:
        reply = await asyncio.to_thread(self.module.get_chat_data, seq, limit)
        return chats_of(json.loads(reply) if isinstance(reply, str | bytes) else reply)

    def open(self, random_key: bytes, encrypt_chat_msg: str) -> dict[str, Any]:
        return as_message(self.module.decrypt_data(random_key, encrypt_chat_msg))


def load_sdk_source(module_name: str) -> SdkSource:
    """Import the finance SDK's wrapper module; a missing or incomplete one is a one-line error."""
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ArchiveSourceError(
            f"[compliance] archive_source = \"sdk\" needs the finance SDK wrapper module {module_name!r}, "
            f"which cannot be imported ({exc}); install it, or set archive_source = \"off\"") from None
    missing = [f for f in ("get_chat_data", "decrypt_data") if not callable(getattr(module, f, None))]
    if missing:
        raise ArchiveSourceError(f"finance SDK wrapper module {module_name!r} lacks {', '.join(missing)}()")
    return SdkSource(module)
