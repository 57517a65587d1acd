"""The JS-SDK side of the sandbox: the app's jsapi ticket (``ticket/get``), and the webview
harness a browser uses (open a chat toolbar, the harness script, the agentConfig check,
recorded ``sendChatMessage``)."""

from __future__ import annotations

import hashlib
import json
from typing import Any
from urllib.parse import urlencode

from scrm.sandbox import SANDBOX_AGENT_ID, SANDBOX_CORP_ID
from scrm.sandbox.jssdk import TICKETS_PER_HOUR, WEBVIEW_COOKIE
from tests.sandbox.conftest import Sandbox

PAGE = "https://scrm.bank.example/sidebar/"


async def test_the_ticket_is_the_same_while_valid_and_limited_per_hour(sandbox: Sandbox) -> None:
    first = await sandbox.api.get("ticket/get", type="agent_config")
    assert first["errcode"] == 0 and first["expires_in"] == 7200
    sandbox.clock.advance(seconds=600)
    again = await sandbox.api.get("ticket/get", type="agent_config")
    assert (again["ticket"], again["expires_in"]) == (first["ticket"], 6600)
    sandbox.clock.advance(seconds=6600)
    assert (await sandbox.api.get("ticket/get", type="agent_config"))["ticket"] != first["ticket"]
    assert (await sandbox.api.get("ticket/get", type="jsapi"))["errcode"] == 40058
    # The two fetches an hour and more ago no longer count; this hour's first was just above.
    for _ in range(TICKETS_PER_HOUR - 1):
        assert (await sandbox.api.get("ticket/get", type="agent_config"))["errcode"] == 0
    assert (await sandbox.api.get("ticket/get", type="agent_config"))["errcode"] == 45009


async def harness(sandbox: Sandbox, path: str, body: dict[str, Any]) -> dict[str, Any]:
    # text/plain, as the harness script sends it (no CORS preflight).
    async with sandbox.api.session.post(f"{sandbox.base}{path}", data=json.dumps(body)) as resp:
        assert resp.status == 200 and resp.headers["Access-Control-Allow-Origin"] == "*"
        reply: dict[str, Any] = await resp.json()
        return reply


async def test_a_webview_answers_only_after_a_good_agent_config(sandbox: Sandbox) -> None:
    ext = sandbox.ids.customers["王芳"]
    query = urlencode({"member": "zhangwei", "customer": ext, "target": PAGE})
    async with sandbox.api.session.get(f"{sandbox.base}/sandbox/webview?{query}", allow_redirects=False) as resp:
        assert (resp.status, resp.headers["Location"]) == (302, PAGE)
        view_id = resp.cookies[WEBVIEW_COOKIE].value
    # (aiohttp's cookie jar keeps no cookie of an IP address: the browser's cookie, sent by hand)
    cookies = {WEBVIEW_COOKIE: view_id}
    async with sandbox.api.session.get(f"{sandbox.base}/sandbox/ww.js", cookies=cookies) as resp:
        script = await resp.text()
    assert f'"webview": "{view_id}"' in script and '"entry": "single_chat_tools"' in script
    # The webview's member is who WeCom's OAuth page says is looking.
    async with sandbox.api.session.get(f"{sandbox.base}/connect/oauth2/authorize", allow_redirects=False,
                                       cookies=cookies, params={
            "appid": SANDBOX_CORP_ID, "redirect_uri": PAGE + "oauth", "state": "s1"}) as resp:
        code = resp.headers["Location"].split("code=")[1].split("&")[0]
    assert (await sandbox.api.get("auth/getuserinfo", code=code))["userid"] == "zhangwei"

    message = {"msgtype": "text", "text": {"content": "您好"}}
    early = await harness(sandbox, "/sandbox/jssdk/send", {"webview": view_id, "message": message})
    assert early["errcode"] == 60011  # before agentConfig: nothing is sent
    ticket = (await sandbox.api.get("ticket/get", type="agent_config"))["ticket"]
    good = hashlib.sha1(f"jsapi_ticket={ticket}&noncestr=n1&timestamp=1700000000&url={PAGE}".encode()).hexdigest()
    config = {"webview": view_id, "corpId": SANDBOX_CORP_ID, "agentId": SANDBOX_AGENT_ID, "url": PAGE,
              "nonceStr": "n1", "timestamp": 1700000000}
    bad = await harness(sandbox, "/sandbox/jssdk/agent_config", {**config, "signature": good[::-1]})
    assert bad["errcode"] == 40058 and "invalid signature" in bad["errmsg"]
    assert (await harness(sandbox, "/sandbox/jssdk/agent_config", {**config, "signature": good}))["errcode"] == 0
    assert (await harness(sandbox, "/sandbox/jssdk/send", {"webview": view_id, "message": message}))["errcode"] == 0
    assert (await harness(sandbox, "/sandbox/jssdk/send", {"webview": view_id, "message": {"msgtype": "x"}})
            )["errcode"] == 40058
    assert [(s.member, s.customer, s.message) for s in sandbox.state.jssdk.sends_to(customer=ext)] == [
        ("zhangwei", ext, message)]


async def test_webview_requests_that_make_no_sense_are_refused(sandbox: Sandbox) -> None:
    ext = sandbox.ids.customers["王芳"]
    for params in ({"member": "zhangwei", "customer": ext, "target": "notaurl"},
                   {"member": "ghost", "customer": ext, "target": PAGE},
                   {"member": "zhangwei", "customer": "wmNobody", "target": PAGE},
                   {"member": "zhangwei", "customer": ext, "chat": "wrX", "target": PAGE}):
        async with sandbox.api.session.get(f"{sandbox.base}/sandbox/webview", params=params,
                                           allow_redirects=False) as resp:
            assert resp.status == 400, params
    # Without a chat: the member's chats to pick from.
    async with sandbox.api.session.get(f"{sandbox.base}/sandbox/webview",
                                       params={"member": "zhangwei", "target": PAGE}) as resp:
        assert resp.status == 200 and "单聊：王芳" in await resp.text() and "群聊：代发工资群" in await resp.text()
