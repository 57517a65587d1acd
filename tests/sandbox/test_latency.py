"""The sandbox's network latency: a real delay on every answer, seeded jitter, the clock untouched.

Durations are measured on the event loop's monotonic clock and only bounded from below (a busy
machine makes calls slower, never faster); the one upper bound is ten times the delay, to show
that concurrent calls wait side by side, not one after the other.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from scrm.sandbox import SANDBOX_CORP_ID, SANDBOX_SECRET
from scrm.sandbox.latency import Latency
from tests.sandbox.conftest import Sandbox

LATENCY_S = 0.05
SEND = {"touser": "zhangwei", "msgtype": "text", "agentid": 1000002, "text": {"content": "您的客户王芳今天生日"}}


def _now() -> float:
    return asyncio.get_running_loop().time()


@pytest.mark.parametrize("server_options", [{"latency_s": LATENCY_S}])
async def test_every_answer_waits_and_the_logical_clock_does_not_move(sandbox: Sandbox) -> None:
    clock_before = sandbox.clock.now()
    already = sandbox.server.latency.delayed  # the fixture's own gettoken
    assert already == 1
    t0 = _now()
    token = await sandbox.api.get("gettoken", corpid=SANDBOX_CORP_ID, corpsecret=SANDBOX_SECRET, auth=False)
    t1 = _now()
    reply = await sandbox.api.post("message/send", SEND)
    t2 = _now()
    failed = await sandbox.api.get("externalcontact/list", userid="nobody-here")  # an error answer waits too
    t3 = _now()
    assert token["errcode"] == 0 and reply["errcode"] == 0 and failed["errcode"] != 0
    for took in (t1 - t0, t2 - t1, t3 - t2):
        assert took >= LATENCY_S * 0.9  # the loop's timers may fire a hair early
    assert sandbox.server.latency.delayed == already + 3
    assert sandbox.server.latency.total_s == pytest.approx(LATENCY_S * (already + 3))
    assert sandbox.clock.now() == clock_before  # the network takes real time, not sandbox time
    assert sandbox.state.received_calls("message/send")[0].at == clock_before.timestamp()


@pytest.mark.parametrize("server_options", [{"latency_s": 0.1}])
async def test_concurrent_calls_wait_side_by_side(sandbox: Sandbox) -> None:
    t0 = _now()
    replies = await asyncio.gather(*(sandbox.api.post("externalcontact/get_corp_tag_list", {}) for _ in range(10)))
    took = _now() - t0
    assert all(r["errcode"] == 0 for r in replies)
    assert 0.09 <= took < 0.1 * 10 / 2  # one after the other would take 1 s


@pytest.mark.parametrize("server_options", [{"latency_s": 0.0}])
async def test_zero_latency_adds_no_sleep(sandbox: Sandbox) -> None:
    for _ in range(3):
        assert (await sandbox.api.post("message/send", SEND))["errcode"] == 0
    assert not sandbox.server.latency.enabled
    assert sandbox.server.latency.delayed == 0 and sandbox.server.latency.total_s == 0.0


async def test_the_default_server_has_no_latency(sandbox: Sandbox) -> None:
    assert (await sandbox.api.post("message/send", SEND))["errcode"] == 0
    assert sandbox.server.latency.delayed == 0


async def test_oauth_redirect_waits_too(sandbox: Sandbox) -> None:
    sandbox.server.latency = Latency(LATENCY_S)  # replaceable while the server runs
    t0 = _now()
    async with sandbox.api.session.get(f"{sandbox.base}/connect/oauth2/authorize", allow_redirects=False,
                                       params={"appid": SANDBOX_CORP_ID, "redirect_uri": "https://a.example/",
                                               "response_type": "code", "scope": "snsapi_base"}) as resp:
        assert resp.status == 302
    assert _now() - t0 >= LATENCY_S * 0.9
    assert sandbox.server.latency.delayed == 1


def test_jitter_stays_within_bounds_and_repeats_with_the_seed() -> None:
    latency = Latency(0.15, 0.05, seed=7)
    draws = [latency.draw() for _ in range(2000)]
    assert all(0.10 <= d <= 0.20 for d in draws)
    assert min(draws) < 0.11 and max(draws) > 0.19  # it does spread over the whole range
    assert sum(draws) / len(draws) == pytest.approx(0.15, abs=0.005)
    again = Latency(0.15, 0.05, seed=7)
    assert [again.draw() for _ in range(2000)] == draws
    other = Latency(0.15, 0.05, seed=8)
    assert [other.draw() for _ in range(20)] != draws[:20]


def test_jitter_wider_than_the_latency_never_goes_below_zero() -> None:
    latency = Latency(0.01, 0.05, seed=1)
    draws = [latency.draw() for _ in range(1000)]
    assert min(draws) == 0.0 and max(draws) <= 0.06
    assert 0 < sum(d == 0.0 for d in draws) < 1000


def test_fixed_latency_without_jitter() -> None:
    assert {Latency(0.2).draw() for _ in range(10)} == {0.2}


@pytest.mark.parametrize("kwargs", [{"latency_s": -0.1}, {"jitter_s": -1.0}, {"latency_s": float("nan")},
                                    {"jitter_s": float("inf")}])
def test_bad_settings_are_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="must be a finite number >= 0"):
        Latency(**kwargs)
