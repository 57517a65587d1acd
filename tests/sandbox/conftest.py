"""Fixtures: a seeded sandbox served over real HTTP, a fake clock, and a small JSON client."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from lxml import etree

from scrm.adapters.wecom.crypto import WeComCrypto
from scrm.kernel.clock import FakeClock
from scrm.sandbox import SANDBOX_AES_KEY, SANDBOX_CORP_ID, SANDBOX_SECRET, SANDBOX_TOKEN
from scrm.sandbox.demo import DemoIds, seed_demo
from scrm.sandbox.driver import CallbackDriver
from scrm.sandbox.records import Limits
from scrm.sandbox.server import SandboxServer
from scrm.sandbox.state import SandboxState

Json = dict[str, Any]


class Api:
    """Calls the sandbox like a WeCom client would (token in the query string)."""

    def __init__(self, session: aiohttp.ClientSession, base: str) -> None:
        self.session = session
        self.base = base
        self.token = ""
        self.auto_refresh = True

    async def fetch_token(self) -> str:
        reply = await self.get("gettoken", corpid=SANDBOX_CORP_ID, corpsecret=SANDBOX_SECRET, auth=False)
        assert reply["errcode"] == 0, reply
        self.token = reply["access_token"]
        return self.token

    def _params(self, params: dict[str, Any], auth: bool) -> dict[str, str]:
        out = {k: str(v) for k, v in params.items()}
        if auth:
            out.setdefault("access_token", self.token)
        return out

    async def get(self, path: str, *, auth: bool = True, **params: Any) -> Json:
        return await self.call("GET", path, None, auth, params)

    async def post(self, path: str, body: Json | None = None, *, auth: bool = True, **params: Any) -> Json:
        return await self.call("POST", path, body or {}, auth, params)

    async def call(self, method: str, path: str, body: Json | None, auth: bool, params: dict[str, Any]) -> Json:
        """One call; like a real client, refresh the token once on 42001/40014 (auto_refresh)."""
        for attempt in range(2):
            async with self.session.request(
                method, f"{self.base}/cgi-bin/{path}", params=self._params(params, auth), json=body
            ) as resp:
                assert resp.status == 200
                data: Json = await resp.json()
            retry = self.auto_refresh and auth and "access_token" not in params and attempt == 0
            if not (retry and data["errcode"] in (40014, 42001)):
                return data
            await self.fetch_token()
        raise AssertionError("unreachable")


@dataclass
class Sandbox:
    clock: FakeClock
    state: SandboxState
    server: SandboxServer
    ids: DemoIds
    api: Api
    base: str


@pytest.fixture
def limits() -> Limits:
    return Limits(follow_user_page=2)


@pytest.fixture
def server_options() -> dict[str, Any]:
    return {}


@pytest.fixture
async def sandbox(limits: Limits, server_options: dict[str, Any]) -> AsyncIterator[Sandbox]:
    clock = FakeClock()
    state = SandboxState(limits=limits)
    ids = seed_demo(state)
    server = SandboxServer(state, clock, **server_options)
    test_server = TestServer(server.app)
    await test_server.start_server()
    base = str(test_server.make_url("")).rstrip("/")
    async with aiohttp.ClientSession() as session:
        api = Api(session, base)
        await api.fetch_token()
        yield Sandbox(clock=clock, state=state, server=server, ids=ids, api=api, base=base)
    await test_server.close()


class CallbackTarget:
    """A stand-in for our service's callback endpoint: verifies, decrypts and records events.

    The first ``hang_first`` deliveries get no answer in time, the next ``fail_first`` get 500.
    """

    def __init__(self, crypto: WeComCrypto) -> None:
        self.crypto = crypto
        self.hang_first = 0
        self.fail_first = 0
        self.calls = 0
        self.events: list[etree._Element] = []
        self.raw: list[str] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.calls += 1
        if self.calls <= self.hang_first:
            await asyncio.sleep(0.5)  # longer than the driver's 0.1 s timeout
        if self.calls <= self.hang_first + self.fail_first:
            return web.Response(status=500)
        envelope = etree.fromstring(await request.read())
        encrypted = envelope.findtext("Encrypt") or ""
        q = request.query
        plain = self.crypto.verify_and_decrypt(q["msg_signature"], q["timestamp"], q["nonce"], encrypted)
        self.raw.append(plain)
        self.events.append(etree.fromstring(plain.encode()))
        return web.Response(text="")


@dataclass
class Driven:
    sandbox: Sandbox
    target: CallbackTarget
    driver: CallbackDriver


@pytest.fixture
async def driven(sandbox: Sandbox) -> AsyncIterator[Driven]:
    crypto = WeComCrypto(SANDBOX_TOKEN, SANDBOX_AES_KEY, SANDBOX_CORP_ID)
    target = CallbackTarget(crypto)
    app = web.Application()
    app.router.add_post("/callback", target.handle)
    target_server = TestServer(app)
    await target_server.start_server()
    url = str(target_server.make_url("/callback"))
    async with CallbackDriver(sandbox.state, crypto, url, sandbox.clock, timeout_s=0.1, seed=1) as driver:
        yield Driven(sandbox=sandbox, target=target, driver=driver)
    await target_server.close()
