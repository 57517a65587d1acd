"""The sandbox's aiohttp application: WeCom's ``/cgi-bin`` APIs over real HTTP.

Every API reply is HTTP 200 with ``{"errcode", "errmsg", ...}``. Around each route the server
applies, in order: the network latency (``latency_s`` ± ``jitter_s``, a real sleep once the
request is read; the logical clock does not move, see ``scrm.sandbox.latency``), time-driven
state transitions (``settle``), injected faults, the per-API per-corp rate limit (45009), the
access-token check (41001/40014/42001), body parsing (47001 on bad JSON), then the route
itself. Successful calls go to ``state.received``. The latency delays every answer the server
gives, ``gettoken`` and the OAuth redirect included: all of them cross the network.

Choices where WeCom's behaviour is not documented (PROTOCOL.md §9), picked so a client does
not retry: unknown/expired welcome_code → 40058 (a used one → 41051); unknown ids of the
sandbox's own objects (msgid, config_id, chat_id, jobid, response_code, task_id reuse) → 40058;
a 4th reminder within 24 h → 40058; over 3000 corp tags → 40058; a tag name already in the
group → 40071; editing/deleting an admin-made tag → 60011; an unknown member userid → 60111;
a body that is not a JSON object → 47001. Rate limits count every call that reaches an API,
failed ones included.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from functools import partial

from aiohttp import web

from scrm.kernel.clock import Clock
from scrm.sandbox import (
    SANDBOX_AGENT_ID,
    SANDBOX_CORP_ID,
    SANDBOX_SECRET,
    errors,
    server_archive,
    server_auth,
    server_contacts,
    server_directory,
    server_groups,
    server_jssdk,
    server_masssend,
    server_messages,
    server_moments,
    server_tags,
    server_transfer,
    server_ways,
)
from scrm.sandbox.errors import ApiError
from scrm.sandbox.faults import FaultInjector, normalize_path
from scrm.sandbox.latency import Latency
from scrm.sandbox.params import Json
from scrm.sandbox.records import ReceivedCall, SendResult
from scrm.sandbox.routing import Call, Route, ServerConfig, Upload
from scrm.sandbox.state import SandboxState

STATE_KEY = web.AppKey("scrm_sandbox_state", SandboxState)
SERVER_KEY: web.AppKey[SandboxServer] = web.AppKey("scrm_sandbox_server")

ROUTE_TABLES = (
    server_auth.router,
    server_contacts.router,
    server_directory.router,
    server_tags.router,
    server_ways.router,
    server_groups.router,
    server_masssend.router,
    server_moments.router,
    server_messages.router,
    server_transfer.router,
    server_jssdk.router,
    server_archive.router,
)
MAX_BODY = 25 * 2**20  # media/upload accepts files up to 20 MB
_dumps = partial(json.dumps, ensure_ascii=False)


class RateLimiter:
    """Calls per API per corp in fixed clock minutes (WeCom blocks for the rest of the minute)."""

    def __init__(self, per_minute: int, overrides: Mapping[str, int] | None = None) -> None:
        self.per_minute = per_minute
        self.overrides = {normalize_path(k): v for k, v in (overrides or {}).items()}
        self._counts: dict[str, tuple[int, int]] = {}  # path → (minute, count)

    def allow(self, path: str, now: float) -> bool:
        minute = int(now // 60)
        seen_minute, count = self._counts.get(path, (minute, 0))
        if seen_minute != minute:
            count = 0
        if count >= self.overrides.get(path, self.per_minute):
            return False
        self._counts[path] = (minute, count + 1)
        return True


class SandboxServer:
    """A stateful WeCom API emulator; serve ``.app`` with any aiohttp runner or TestServer.

    ``per_api_overrides`` sets other per-minute limits by path (add_moment_task defaults to
    WeCom's 10/min). ``trusted_domain`` enables the OAuth redirect-domain check (50001).
    ``latency_s`` ± ``jitter_s`` delays every answer by that many real seconds (uniform jitter,
    never below 0, drawn from ``random.Random(latency_seed)``); ``.latency`` may be replaced
    while the server runs.
    """

    def __init__(
        self,
        state: SandboxState,
        clock: Clock,
        *,
        corp_id: str = SANDBOX_CORP_ID,
        secret: str = SANDBOX_SECRET,
        agent_id: int = SANDBOX_AGENT_ID,
        per_api_per_minute: int = 10000,
        per_api_overrides: Mapping[str, int] | None = None,
        fault_seed: int = 0,
        trusted_domain: str | None = None,
        latency_s: float = 0.0,
        jitter_s: float = 0.0,
        latency_seed: int = 0,
    ) -> None:
        self.state = state
        self.clock = clock
        self.config = ServerConfig(corp_id=corp_id, secret=secret, agent_id=agent_id, trusted_domain=trusted_domain)
        self.faults = FaultInjector(seed=fault_seed)
        self.latency = Latency(latency_s, jitter_s, seed=latency_seed)
        overrides = {"externalcontact/add_moment_task": server_moments.PER_MINUTE, **(per_api_overrides or {})}
        self.limiter = RateLimiter(per_api_per_minute, overrides)
        self._inflight: set[asyncio.Future[web.StreamResponse]] = set()
        self.app = web.Application(client_max_size=MAX_BODY)
        self.app[STATE_KEY] = state
        self.app[SERVER_KEY] = self
        for table in ROUTE_TABLES:
            for route in table.routes:
                self.app.router.add_route(route.method, route.path, partial(self._handle, route))
        self.app.router.add_get("/connect/oauth2/authorize", self._authorize)
        self.app.router.add_get("/wwlogin/sso/login", self._sso_login)
        # The JS-SDK webview harness (server_jssdk): pages and script a browser uses, not APIs.
        self.app.router.add_get("/sandbox/webview", self._webview)
        self.app.router.add_get("/sandbox/ww.js", self._harness_script)
        self.app.router.add_post("/sandbox/jssdk/agent_config", self._agent_config)
        self.app.router.add_post("/sandbox/jssdk/send", self._chat_send)

    # -- test helpers ------------------------------------------------------------------------

    def now(self) -> float:
        return self.clock.now().timestamp()

    def expire_token(self, token: str) -> None:
        """The token answers 42001 from now on."""
        self.state.expire_token(token)

    def expire_all_tokens(self) -> None:
        self.state.expire_all_tokens()

    def issue_oauth_code(self, viewer: str = "") -> str:
        """An OAuth code for a member userid, a customer's external_userid or an openid."""
        return server_auth.issue_oauth_code(self.state, self.now(), viewer)

    def confirm_msg_task(self, msgid: str, userid: str) -> list[SendResult]:
        """The sender confirms a mass-send task in the client (no callback exists for this)."""
        return self.state.confirm_msg_task(msgid, userid, self.now())

    # -- request handling --------------------------------------------------------------------

    async def _authorize(self, request: web.Request) -> web.StreamResponse:
        await self.latency.wait()
        return server_auth.authorize(request, self.state, self.config, self.now())

    async def _sso_login(self, request: web.Request) -> web.StreamResponse:
        await self.latency.wait()
        return server_auth.sso_login(request, self.state, self.config, self.now())

    async def _webview(self, request: web.Request) -> web.StreamResponse:
        return server_jssdk.open_webview(request, self.state)

    async def _harness_script(self, request: web.Request) -> web.StreamResponse:
        return server_jssdk.harness_script(request, self.state)

    async def _agent_config(self, request: web.Request) -> web.StreamResponse:
        await self.latency.wait()
        return await server_jssdk.check_agent_config(request, self.state, self.config, self.now())

    async def _chat_send(self, request: web.Request) -> web.StreamResponse:
        await self.latency.wait()
        return await server_jssdk.record_send(request, self.state, self.now())

    async def _handle(self, route: Route, request: web.Request) -> web.StreamResponse:
        # Shielded: a client that gives up (timeout) must not cancel a call WeCom would still
        # complete; aiohttp's test server cancels handlers on disconnect, run_app does not.
        task = asyncio.ensure_future(self._process(route, request))
        self._inflight.add(task)
        task.add_done_callback(self._forget)
        return await asyncio.shield(task)

    def _forget(self, task: asyncio.Future[web.StreamResponse]) -> None:
        self._inflight.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved: a vanished client is not an error worth logging

    async def _process(self, route: Route, request: web.Request) -> web.StreamResponse:
        # Read the whole request first: after a slow fault the client may be gone.
        raw, files = await self._read_request(request)
        # The network: a real delay (in the shielded task, so a vanished client does not end it).
        await self.latency.wait()
        self.state.settle(self.now())
        fault = self.faults.pick(route.path)
        if fault is not None and fault.kind == "error":
            return self._reply(ApiError(fault.errcode).reply())
        if fault is not None and fault.kind == "slow":
            # Server side: a real delay is what makes the client's timeout fire.
            await asyncio.sleep(fault.delay_s)
        now = self.now()
        if not self.limiter.allow(route.path, now):
            return self._reply(ApiError(errors.FREQ_LIMIT, f"more than the per-minute limit on {route.path}").reply())
        body: Json = {}
        try:
            if route.auth:
                self.state.check_token(request.query.get("access_token"), now)
            body = self._parse_json(raw)
            call = Call(state=self.state, config=self.config, now=now, query=request.query, body=body, files=files)
            reply: Json = {"errcode": 0, "errmsg": "ok", **route.handler(call)}
        except ApiError as exc:
            reply = exc.reply()
        if reply["errcode"] == 0:
            query = {k: v for k, v in request.query.items() if k != "access_token"}
            self.state.record_call(ReceivedCall(path=route.path, method=route.method, query=query, body=body, at=now))
        if fault is not None and fault.kind == "drop" and request.transport is not None:
            # The effect is in the state; the client gets no reply (ServerDisconnectedError).
            request.transport.close()
        return self._reply(reply)

    @staticmethod
    async def _read_request(request: web.Request) -> tuple[bytes, dict[str, Upload]]:
        """The raw JSON body, or the files of a multipart body."""
        if request.method != "POST":
            return b"", {}
        if not request.content_type.startswith("multipart/"):
            return await request.read(), {}
        files: dict[str, Upload] = {}
        form = await request.post()
        for name, value in form.items():
            if isinstance(value, web.FileField):
                files[name] = Upload(filename=value.filename, content_type=value.content_type, data=value.file.read())
        return b"", files

    @staticmethod
    def _parse_json(raw: bytes) -> Json:
        if not raw.strip():
            return {}
        try:
            body = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise ApiError(errors.DATA_FORMAT_ERROR, "body is not valid JSON") from None
        if not isinstance(body, dict):
            raise ApiError(errors.DATA_FORMAT_ERROR, "body must be a JSON object")
        return body

    @staticmethod
    def _reply(reply: Json) -> web.Response:
        return web.json_response(reply, dumps=_dumps)
