"""Injected faults and the per-API rate limit."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest

from tests.sandbox.conftest import Sandbox

SEND = {"touser": "zhangwei", "msgtype": "text", "agentid": 1000002, "text": {"content": "您的客户王芳今天生日"}}


@pytest.mark.parametrize(("arm", "errcode"), [("system_busy", -1), ("freq_limit", 45009), ("concurrency_limit", 45033)])
async def test_error_faults_have_no_effect(sandbox: Sandbox, arm: str, errcode: int) -> None:
    getattr(sandbox.server.faults, arm)("message/send", count=2)
    for _ in range(2):
        reply = await sandbox.api.post("message/send", SEND)
        assert reply["errcode"] == errcode and str(errcode) in reply["errmsg"]
    assert sandbox.state.delivered_messages() == []
    assert (await sandbox.api.post("message/send", SEND))["errcode"] == 0  # count exhausted
    assert len(sandbox.state.delivered_messages()) == 1
    assert [f.errcode for f in sandbox.server.faults.fired] == [errcode, errcode]


async def test_any_errcode_e_g_token_invalidated(sandbox: Sandbox) -> None:
    sandbox.server.faults.error("externalcontact/list", 40014)
    sandbox.api.auto_refresh = False
    assert (await sandbox.api.get("externalcontact/list", userid="zhangwei"))["errcode"] == 40014
    assert (await sandbox.api.get("externalcontact/list", userid="zhangwei"))["errcode"] == 0


async def test_slow_reply_times_out_client_but_takes_effect(sandbox: Sandbox) -> None:
    sandbox.server.faults.slow("message/send", 0.3)
    with pytest.raises(asyncio.TimeoutError):
        async with sandbox.api.session.post(
            f"{sandbox.base}/cgi-bin/message/send",
            params={"access_token": sandbox.api.token},
            json=SEND,
            timeout=aiohttp.ClientTimeout(total=0.05),
        ) as resp:
            await resp.read()
    for _ in range(50):  # the server finishes the call after its delay
        if sandbox.state.delivered_messages():
            break
        await asyncio.sleep(0.02)
    assert len(sandbox.state.delivered_messages()) == 1


async def test_slow_reply_still_answers(sandbox: Sandbox) -> None:
    sandbox.server.faults.slow("externalcontact/get_corp_tag_list", 0.05)
    assert (await sandbox.api.post("externalcontact/get_corp_tag_list", {}))["errcode"] == 0


async def test_dropped_reply_leaves_effect(sandbox: Sandbox) -> None:
    sandbox.server.faults.drop_reply("message/send")
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await sandbox.api.post("message/send", SEND)
    # The client cannot know; the sandbox shows the message did go out, exactly once.
    assert len(sandbox.state.delivered_messages()) == 1
    assert len(sandbox.state.received_calls("message/send")) == 1
    # A retry with WeCom's duplicate check is safe: the content already reached the member.
    assert (await sandbox.api.post("message/send", {**SEND, "enable_duplicate_check": 1}))["errcode"] == 0
    assert len(sandbox.state.delivered_messages()) == 1
    # A blind resend duplicates.
    await sandbox.api.post("message/send", SEND)
    assert len(sandbox.state.delivered_messages()) == 2


async def test_dropped_reply_after_welcome_then_41051(driven: Any) -> None:
    sandbox = driven.sandbox
    code = (await driven.driver.add_external_contact("zhangwei")).fields["WelcomeCode"]
    sandbox.server.faults.drop_reply("externalcontact/send_welcome_msg")
    body = {"welcome_code": code, "text": {"content": "欢迎"}}
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await sandbox.api.post("externalcontact/send_welcome_msg", body)
    assert (await sandbox.api.post("externalcontact/send_welcome_msg", body))["errcode"] == 41051
    assert len(sandbox.state.delivered_messages(kind="welcome")) == 1


async def test_probabilistic_faults_are_reproducible(sandbox: Sandbox) -> None:
    async def run() -> list[int]:
        sandbox.server.faults.clear()
        sandbox.server.faults.rng.seed(7)
        sandbox.server.faults.system_busy("externalcontact/get_corp_tag_list", rate=0.3)
        return [(await sandbox.api.post("externalcontact/get_corp_tag_list", {}))["errcode"] for _ in range(40)]

    first, second = await run(), await run()
    assert first == second
    assert 0 < first.count(-1) < 40


async def test_wildcard_fault(sandbox: Sandbox) -> None:
    sandbox.server.faults.system_busy("*", count=1)
    assert (await sandbox.api.get("externalcontact/list", userid="lina"))["errcode"] == -1
    assert (await sandbox.api.get("externalcontact/list", userid="lina"))["errcode"] == 0


@pytest.mark.parametrize("server_options", [{"per_api_per_minute": 3}])
async def test_rate_limit_per_api_per_minute(sandbox: Sandbox) -> None:
    sandbox.clock.advance(60 - sandbox.server.now() % 60)  # start of a minute
    codes = [(await sandbox.api.post("externalcontact/get_corp_tag_list", {}))["errcode"] for _ in range(4)]
    assert codes == [0, 0, 0, 45009]
    assert (await sandbox.api.get("externalcontact/list", userid="lina"))["errcode"] == 0  # another API
    sandbox.clock.advance(60)
    assert (await sandbox.api.post("externalcontact/get_corp_tag_list", {}))["errcode"] == 0
