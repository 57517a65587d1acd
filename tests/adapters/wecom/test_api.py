"""Client mechanics over real HTTP against a small scriptable WeCom stand-in.

The stand-in knows only tokens and scripted replies, so each test states exactly what WeCom
does (revoke the token, answer -1 five times, drop the connection...). Time that matters runs
on a FakeClock; the only real waits are the sub-second timeout test.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import random
import socket
from collections import defaultdict, deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from pytest_aiohttp import AiohttpServer

from scrm.adapters.wecom.api import RetryPolicy, WeComClient
from scrm.adapters.wecom.errors import (
    AccessTokenError,
    AmbiguousCallError,
    ConnectionFailedError,
    LocalRateLimitError,
    RateLimitedError,
    SystemBusyError,
    TokenUnavailableError,
    WeComError,
    WeComHTTPError,
)
from scrm.adapters.wecom.models_groups import GroupChatListResponse
from scrm.adapters.wecom.ratelimit import LimiterConfig, RateLimiter
from scrm.adapters.wecom.token import MemoryTokenStore
from scrm.kernel.clock import FakeClock
from scrm.kernel.config import WeComSettings

CORP_ID = "wwtestcorp"
SECRET = "CORPSECRET-must-never-be-logged"
TOKEN_PREFIX = "ACCESSTOKEN-must-never-be-logged-"

# A scripted reply: a JSON dict, or one of "drop" (close without answering), "hang" (never
# answer), "garbage" (non-JSON 200), or an int HTTP status.
Action = dict[str, Any] | str | int


@dataclass
class Call:
    api: str
    query: dict[str, str]
    body: Any
    at: float
    headers: dict[str, str] = field(default_factory=dict)


class FakeWeCom:
    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.issued = 0
        self.valid: set[str] = set()
        self.calls: list[Call] = []
        self.script: dict[str, deque[Action]] = defaultdict(deque)
        self.handlers: dict[str, Callable[[web.Request, Call], Awaitable[dict[str, Any]]]] = {}
        self.app = web.Application()
        self.app.router.add_route("*", "/cgi-bin/{api:.*}", self.handle)

    def queue(self, api: str, *actions: Action) -> None:
        self.script[api].extend(actions)

    def revoke_all(self) -> None:
        """WeCom may invalidate tokens early ("提前使access_token失效")."""
        self.valid.clear()

    def calls_to(self, api: str) -> list[Call]:
        return [c for c in self.calls if c.api == api]

    async def handle(self, request: web.Request) -> web.StreamResponse:
        api = request.match_info["api"]
        body: Any = None
        if request.content_type == "application/json":
            body = json.loads(await request.read())
        call = Call(api, dict(request.query), body, self.clock.monotonic(), dict(request.headers))
        self.calls.append(call)
        if api == "gettoken":
            if request.query.get("corpid") != CORP_ID or request.query.get("corpsecret") != SECRET:
                return web.json_response({"errcode": 40001, "errmsg": "invalid credential"})
            self.issued += 1
            issued = f"{TOKEN_PREFIX}{self.issued}"
            self.valid.add(issued)
            return web.json_response({"errcode": 0, "errmsg": "ok", "access_token": issued, "expires_in": 7200})
        token = request.query.get("access_token")
        if not token:
            return web.json_response({"errcode": 41001, "errmsg": "access_token missing"})
        if token not in self.valid:
            return web.json_response({"errcode": 42001, "errmsg": "access_token expired"})
        action: Action | None = self.script[api].popleft() if self.script[api] else None
        if action == "drop":
            assert request.transport is not None
            request.transport.abort()
            await asyncio.sleep(0.01)
            return web.Response()
        if action == "hang":
            await asyncio.sleep(5)
        if action == "garbage":
            return web.Response(text="<html>gateway</html>")
        if isinstance(action, int):
            return web.Response(status=action, text="error")
        if isinstance(action, dict):
            return web.json_response(action)
        if api in self.handlers:
            return web.json_response(await self.handlers[api](request, call))
        return web.json_response({"errcode": 0, "errmsg": "ok", "echo": body})


@dataclass
class Env:
    fake: FakeWeCom
    client: WeComClient
    clock: FakeClock
    store: MemoryTokenStore


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def make_client(base: str, clock: FakeClock, store: MemoryTokenStore | None = None, *,
                timeout_s: float = 5.0, limiter: RateLimiter | None = None, **settings: Any) -> WeComClient:
    ws = WeComSettings(corp_id=CORP_ID, agent_id=1000002, secret=SECRET, api_base=base,
                       request_timeout_s=timeout_s, **settings)
    return WeComClient(ws, token_store=store or MemoryTokenStore(clock), clock=clock, limiter=limiter,
                       retry=RetryPolicy(max_attempts=4, backoff_base_s=1.0, backoff_max_s=8.0),
                       rng=random.Random(7))


@pytest.fixture
async def env(aiohttp_server: AiohttpServer) -> AsyncIterator[Env]:
    clock = FakeClock()
    fake = FakeWeCom(clock)
    server = await aiohttp_server(fake.app)
    store = MemoryTokenStore(clock)
    client = make_client(str(server.make_url("")), clock, store, timeout_s=0.5)
    async with client:
        yield Env(fake, client, clock, store)


# ------------------------------------------------------------------------------ basics

async def test_call_posts_utf8_json_with_cached_token(env: Env) -> None:
    r1 = await env.client.call("externalcontact/remark", {"userid": "zhangsan", "remark": "王女士"})
    r2 = await env.client.call("/cgi-bin/externalcontact/remark", {"userid": "lisi"})
    assert r1["echo"] == {"userid": "zhangsan", "remark": "王女士"}
    assert r2["echo"] == {"userid": "lisi"}
    assert env.fake.issued == 1  # one gettoken, cached afterwards
    remark = env.fake.calls_to("externalcontact/remark")[0]
    assert remark.query["access_token"] == f"{TOKEN_PREFIX}1"
    assert remark.headers["Content-Type"].startswith("application/json")


async def test_get_with_params(env: Env) -> None:
    await env.client.call("externalcontact/list", method="GET", params={"userid": "zhangsan"})
    call = env.fake.calls_to("externalcontact/list")[0]
    assert call.query["userid"] == "zhangsan" and call.body is None


async def test_gettoken_bad_secret_means_not_sent(aiohttp_server: AiohttpServer) -> None:
    clock = FakeClock()
    fake = FakeWeCom(clock)
    server = await aiohttp_server(fake.app)
    ws = WeComSettings(corp_id=CORP_ID, secret="wrong", api_base=str(server.make_url("")))
    async with WeComClient(ws, token_store=MemoryTokenStore(clock), clock=clock) as client:
        with pytest.raises(TokenUnavailableError) as info:
            await client.call("externalcontact/list", method="GET", params={"userid": "x"})
        assert info.value.errcode == 40001 and info.value.api == "externalcontact/list"
        assert not info.value.sent and info.value.retry_safe
        assert not fake.calls_to("externalcontact/list")
        # The typed gettoken itself reports WeCom's answer as is.
        with pytest.raises(WeComError) as direct:
            await client.gettoken()
        assert direct.value.errcode == 40001 and direct.value.api == "gettoken"


async def test_other_errcode_raises_without_retry(env: Env) -> None:
    env.fake.queue("externalcontact/mark_tag", {"errcode": 84061, "errmsg": "not external contact"})
    with pytest.raises(WeComError) as info:
        await env.client.call("externalcontact/mark_tag", {"userid": "a"})
    exc = info.value
    assert (exc.errcode, exc.errmsg, exc.api) == (84061, "not external contact", "externalcontact/mark_tag")
    assert type(exc) is WeComError and not exc.retry_safe and not exc.may_have_taken_effect
    assert len(env.fake.calls_to("externalcontact/mark_tag")) == 1


# ------------------------------------------------------------------------------ token

async def test_token_revoked_mid_run_is_refreshed_and_call_retried_once(env: Env) -> None:
    await env.client.call("externalcontact/remark", {"n": 1})
    env.fake.revoke_all()
    result = await env.client.call("externalcontact/remark", {"n": 2})
    assert result["echo"] == {"n": 2}
    assert env.fake.issued == 2
    tokens = [c.query["access_token"] for c in env.fake.calls_to("externalcontact/remark")]
    assert tokens == [f"{TOKEN_PREFIX}1", f"{TOKEN_PREFIX}1", f"{TOKEN_PREFIX}2"]
    stored = await env.store.get(env.client.tokens.app)
    assert stored is not None and stored[0] == f"{TOKEN_PREFIX}2"


async def test_concurrent_calls_share_one_refresh(env: Env) -> None:
    await env.client.call("externalcontact/remark", {})
    env.fake.revoke_all()
    await asyncio.gather(*(env.client.call("externalcontact/remark", {"i": i}) for i in range(15)))
    assert env.fake.issued == 2


async def test_token_rejected_after_refresh_raises(env: Env) -> None:
    env.fake.queue("externalcontact/get_corp_tag_list", {"errcode": 40014, "errmsg": "invalid access_token"},
                   {"errcode": 40014, "errmsg": "invalid access_token"})
    with pytest.raises(AccessTokenError) as info:
        await env.client.call("externalcontact/get_corp_tag_list", {})
    assert info.value.errcode == 40014
    assert env.fake.issued == 2 and len(env.fake.calls_to("externalcontact/get_corp_tag_list")) == 2


async def test_token_refreshed_before_expiry(env: Env) -> None:
    await env.client.call("externalcontact/remark", {})
    env.clock.advance(7200 - 299)  # inside the 5-minute margin
    await env.client.call("externalcontact/remark", {})
    assert env.fake.issued == 2


# ------------------------------------------------------------------------------ -1, 45009

async def test_system_busy_storm_is_retried_with_backoff(env: Env) -> None:
    busy = {"errcode": -1, "errmsg": "system busy"}
    env.fake.queue("externalcontact/add_contact_way", busy, busy, busy)
    t0 = env.clock.monotonic()
    result = await env.client.call("externalcontact/add_contact_way", {"type": 1})
    assert result["errcode"] == 0
    times = [c.at - t0 for c in env.fake.calls_to("externalcontact/add_contact_way")]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    # Exponential with up to 50 % jitter: 1 s, 2 s, 4 s nominal.
    for gap, nominal in zip(gaps, [1.0, 2.0, 4.0], strict=True):
        assert nominal * 0.5 <= gap <= nominal


async def test_system_busy_gives_up_after_bounded_attempts(env: Env) -> None:
    env.fake.queue("externalcontact/add_contact_way", *[{"errcode": -1, "errmsg": "system busy"}] * 10)
    with pytest.raises(SystemBusyError) as info:
        await env.client.call("externalcontact/add_contact_way", {})
    assert info.value.errcode == -1 and info.value.retry_safe
    assert len(env.fake.calls_to("externalcontact/add_contact_way")) == 4


async def test_45009_pauses_and_slows_the_shared_bucket(env: Env) -> None:
    env.fake.queue("externalcontact/mark_tag", {"errcode": 45009, "errmsg": "api freq out of limit"})
    t0 = env.clock.monotonic()
    await env.client.call("externalcontact/mark_tag", {})
    calls = env.fake.calls_to("externalcontact/mark_tag")
    assert len(calls) == 2 and calls[1].at - t0 >= 2.0  # LimiterConfig.penalty_base_s
    assert env.client.limiter.bucket("externalcontact/mark_tag").factor == 0.5
    # Other APIs keep their full rate.
    assert env.client.limiter.bucket("externalcontact/remark").factor == 1.0


async def test_45033_exhausted_raises_rate_limited(env: Env) -> None:
    env.fake.queue("message/send", *[{"errcode": 45033, "errmsg": "api concurrent out of limit"}] * 5)
    with pytest.raises(RateLimitedError) as info:
        await env.client.call("message/send", {"touser": "alice", "msgtype": "text"})
    assert info.value.errcode == 45033 and info.value.retry_safe
    assert len(env.fake.calls_to("message/send")) == 3


# ------------------------------------------------------------------------------ transport

async def test_dropped_reply_is_ambiguous_and_not_retried(env: Env) -> None:
    await env.client.call("externalcontact/remark", {})  # token in hand
    env.fake.queue("externalcontact/add_msg_template", "drop")
    with pytest.raises(AmbiguousCallError) as info:
        await env.client.call("externalcontact/add_msg_template", {"text": {"content": "hi"}})
    assert info.value.may_have_taken_effect and info.value.sent and not info.value.retry_safe
    assert len(env.fake.calls_to("externalcontact/add_msg_template")) == 1


async def test_timeout_after_send_is_ambiguous(env: Env) -> None:
    env.fake.queue("message/send", "hang")
    with pytest.raises(AmbiguousCallError) as info:
        await env.client.call("message/send", {"touser": "alice", "msgtype": "text"})
    assert "TimeoutError" in str(info.value)
    assert len(env.fake.calls_to("message/send")) == 1


@pytest.mark.parametrize("action", [502, "garbage"])
async def test_5xx_or_non_json_reply_is_ambiguous(env: Env, action: Action) -> None:
    env.fake.queue("externalcontact/transfer_customer", action)
    with pytest.raises(AmbiguousCallError):
        await env.client.call("externalcontact/transfer_customer", {})
    assert len(env.fake.calls_to("externalcontact/transfer_customer")) == 1


async def test_4xx_is_an_http_error(env: Env) -> None:
    env.fake.queue("externalcontact/remark", 404)
    with pytest.raises(WeComHTTPError) as info:
        await env.client.call("externalcontact/remark", {})
    assert info.value.status == 404 and not info.value.may_have_taken_effect


async def test_connection_refused_is_retried_then_not_sent() -> None:
    clock = FakeClock()
    store = MemoryTokenStore(clock)
    client = make_client(f"http://127.0.0.1:{free_port()}", clock, store)
    await store.save(client.tokens.app, "tok", clock.now().replace(year=2100))
    async with client:
        t0 = clock.monotonic()
        with pytest.raises(ConnectionFailedError) as info:
            await client.call("message/send", {"touser": "alice"})
    exc = info.value
    assert not exc.sent and exc.retry_safe and not exc.may_have_taken_effect
    assert clock.monotonic() - t0 >= 0.5 + 1.0 + 2.0  # three backoffs (with jitter) before giving up


async def test_no_token_because_gettoken_unreachable_is_not_ambiguous() -> None:
    clock = FakeClock()
    async with make_client(f"http://127.0.0.1:{free_port()}", clock) as client:
        with pytest.raises(ConnectionFailedError) as info:
            await client.call("externalcontact/add_msg_template", {})
    assert info.value.api == "externalcontact/add_msg_template" and not info.value.sent


# ------------------------------------------------------------------------------ pacing

async def test_per_api_limit_paces_calls(aiohttp_server: AiohttpServer) -> None:
    clock = FakeClock()
    fake = FakeWeCom(clock)
    server = await aiohttp_server(fake.app)
    async with make_client(str(server.make_url("")), clock,
                           api_limits_per_minute={"externalcontact/mark_tag": 6}) as client:
        for _ in range(18):
            await client.call("externalcontact/mark_tag", {})
    times = sorted(c.at for c in fake.calls_to("externalcontact/mark_tag"))
    for i, t in enumerate(times):
        assert sum(1 for u in times[i:] if u < t + 60.0) <= 6


async def test_app_messages_paced_per_member(aiohttp_server: AiohttpServer) -> None:
    clock = FakeClock()
    fake = FakeWeCom(clock)
    server = await aiohttp_server(fake.app)
    limiter = RateLimiter(clock, LimiterConfig(member_per_minute=6, member_per_hour=10, member_max_wait_s=600))
    async with make_client(str(server.make_url("")), clock, limiter=limiter) as client:
        for _ in range(10):
            await client.send_text(["alice", "bob"], "提醒")
        sends = fake.calls_to("message/send")
        times = [c.at for c in sends]
        for i, t in enumerate(times):
            assert sum(1 for u in times[i:] if u < t + 60.0) <= 6
        assert sends[0].body["touser"] == "alice|bob" and sends[0].body["agentid"] == 1000002
        assert sends[0].body["enable_duplicate_check"] == 1
        # The 11th message in the hour would wait far beyond member_max_wait_s: refused, not sent.
        limiter.config = LimiterConfig(member_per_minute=6, member_per_hour=10, member_max_wait_s=60)
        with pytest.raises(LocalRateLimitError) as info:
            await client.send_text(["alice"], "太多了")
        assert info.value.retry_after_s > 60 and not info.value.sent
        assert len(fake.calls_to("message/send")) == 10


# ------------------------------------------------------------------------------ typed helpers

async def test_cursor_pagination_follows_next_cursor(env: Env) -> None:
    pages = {"": ("c1", ["g1", "g2"]), "c1": ("c2", ["g3"]), "c2": ("", ["g4"])}

    async def groupchat_list(_req: web.Request, call: Call) -> dict[str, Any]:
        nxt, ids = pages[call.body["cursor"]]
        return {"errcode": 0, "errmsg": "ok", "next_cursor": nxt,
                "group_chat_list": [{"chat_id": i, "status": 0} for i in ids]}

    env.fake.handlers["externalcontact/groupchat/list"] = groupchat_list
    ids = [ref.chat_id async for ref in env.client.iter_group_chats(owners=["zhangsan"], limit=2)]
    assert ids == ["g1", "g2", "g3", "g4"]
    first = env.fake.calls_to("externalcontact/groupchat/list")[0].body
    assert first == {"status_filter": 0, "limit": 2, "owner_filter": {"userid_list": ["zhangsan"]}, "cursor": ""}
    page = await env.client.list_group_chats(cursor="c1")
    assert isinstance(page, GroupChatListResponse) and page.next_cursor == "c2"


async def test_repeated_cursor_stops_pagination(env: Env) -> None:
    async def stuck(_req: web.Request, _call: Call) -> dict[str, Any]:
        return {"errcode": 0, "errmsg": "ok", "next_cursor": "same", "task_list": [{"userid": "u", "status": 2}]}

    env.fake.handlers["externalcontact/get_groupmsg_task"] = stuck
    tasks = [t async for t in env.client.iter_groupmsg_task("msg1")]
    assert len(tasks) == 2


async def test_get_external_contact_merges_follow_user_pages(env: Env) -> None:
    async def get(req: web.Request, _call: Call) -> dict[str, Any]:
        cursor = req.query.get("cursor", "")
        users = {"": ["u1", "u2"], "p2": ["u3"]}[cursor]
        return {"errcode": 0, "errmsg": "ok", "next_cursor": "p2" if cursor == "" else "",
                "external_contact": {"external_userid": "wm1", "name": "张三", "type": 1},
                "follow_user": [{"userid": u, "remark": "", "createtime": 1, "tags": []} for u in users]}

    env.fake.handlers["externalcontact/get"] = get
    contact = await env.client.get_external_contact("wm1")
    assert contact.external_contact.name == "张三"
    assert [f.userid for f in contact.follow_user] == ["u1", "u2", "u3"]
    assert [c.query["external_userid"] for c in env.fake.calls_to("externalcontact/get")] == ["wm1", "wm1"]


async def test_upload_media_sends_multipart_field_media(env: Env) -> None:
    async def upload(req: web.Request, _call: Call) -> dict[str, Any]:
        form = await req.post()
        media = form["media"]
        assert isinstance(media, web.FileField)
        return {"errcode": 0, "errmsg": "", "type": req.query["type"], "media_id": f"m-{media.filename}",
                "created_at": "1380000000", "size": len(media.file.read())}

    env.fake.handlers["media/upload"] = upload
    resp = await env.client.upload_media("image", "logo.png", b"\x89PNG....", content_type="image/png")
    assert (resp.media_id, resp.type, resp.created_at) == ("m-logo.png", "image", 1380000000)
    assert resp.model_extra == {"size": 8}


# ------------------------------------------------------------------------------ secrets

async def test_secrets_and_tokens_never_logged(env: Env, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    await env.client.call("externalcontact/remark", {})
    env.fake.revoke_all()
    env.fake.queue("externalcontact/remark", {"errcode": -1, "errmsg": "busy"}, "drop")
    with pytest.raises(AmbiguousCallError) as ambiguous:
        await env.client.call("externalcontact/remark", {})
    env.fake.queue("externalcontact/remark", {"errcode": 60020, "errmsg": f"not allow ip, access_token={TOKEN_PREFIX}"})
    with pytest.raises(WeComError) as refused:
        await env.client.call("externalcontact/remark", {})
    async with make_client(f"http://127.0.0.1:{free_port()}", env.clock) as dead:
        with pytest.raises(ConnectionFailedError) as unsent:
            await dead.call("externalcontact/remark", {})

    records = [r for r in caplog.records if r.name.startswith("scrm.adapters.wecom")]
    assert records, "the client logs its calls"
    dumped = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in records)
    texts = [dumped, str(ambiguous.value), str(refused.value), str(unsent.value)]
    for text in texts:
        assert SECRET not in text and TOKEN_PREFIX not in text
    assert "access_token=***" in str(refused.value)
    # Structured extras for the log pipeline.
    ok = [r for r in records if getattr(r, "errcode", None) == 0]
    assert ok and all(hasattr(r, "api") and hasattr(r, "elapsed_ms") for r in ok)
    # aiohttp's own exception (whose text may hold the URL) is not chained.
    assert ambiguous.value.__cause__ is None and ambiguous.value.__suppress_context__
