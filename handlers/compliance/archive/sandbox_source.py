"""The sandbox's archive (``scrm.sandbox.server_archive``) as a source: GetChatData over the
WeCom client, and the sandbox's own symmetric scheme for the content."""

from __future__ import annotations

from typing import Any, Protocol

from handlers.compliance.archive.source import EncryptedChat, as_message, chats_of
from scrm.sandbox.server_archive import open_sealed

API = "finance/getchatdata"


class Caller(Protocol):
    async def call(self, api: str, body: Any = None, *, method: str = "POST",
                   params: Any = None) -> dict[str, Any]: ...


class SandboxSource:
    def __init__(self, wecom: Caller) -> None:
        self.wecom = wecom

    async def fetch(self, seq: int, limit: int) -> list[EncryptedChat]:
        return chats_of(await self.wecom.call(API, {"seq": seq, "limit": limit}))

    def open(self, random_key: bytes, encrypt_chat_msg: str) -> dict[str, Any]:
        return as_message(open_sealed(random_key, encrypt_chat_msg))
