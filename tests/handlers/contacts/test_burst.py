"""A burst of 500 new contacts, each delivered up to four times in mixed order (WeCom's retries),
against the sandbox over HTTP: exactly 500 welcome calls, each inside its code's 20-second
window, and each channel's tags on its customers. (Latency figures: bench/welcome.py.)"""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

from scrm.sandbox.driver import DeliveryOutcome
from tests.support.stack import stack

CHANNELS = {  # state → (manager, tags)
    "payroll-onboarding": ("zhangwei", {"渠道/代发开卡"}),
    "lobby-chengxi": ("lina", {"渠道/网点大堂"}),
    "wealth-salon": ("chenjing", {"渠道/理财沙龙", "兴趣/理财"}),
    "cc-campaign-q4": ("wangqiang", {"渠道/信用卡活动"}),
    "": ("zhangwei", set()),  # no channel: default welcome, no tags
}
N = 500


async def test_burst_of_500_adds_with_duplicate_deliveries(sqlite_url: str, tmp_path: Path) -> None:
    rng = random.Random(20261123)
    async with stack(sqlite_url, tmp_path) as s:
        states = list(CHANNELS)
        sent: list[tuple[str, DeliveryOutcome]] = []
        redeliveries: list[DeliveryOutcome] = []
        for i in range(N):
            state = states[i % len(states)]
            out = await s.driver.add_external_contact(CHANNELS[state][0], name=f"客户{i:03d}", state=state)
            assert out.delivered
            sent.append((state, out))
            redeliveries += [out] * 3  # four deliveries in all
            if i % 4 == 0:  # a few retries arrive early, between new events
                rng.shuffle(redeliveries)
                for dup in redeliveries[:8]:
                    assert await s.redeliver(dup) == 200
                del redeliveries[:8]
            if i % 50 == 49:  # the workers keep up while the burst goes on
                await s.run()
        rng.shuffle(redeliveries)
        for dup in redeliveries:
            assert await s.redeliver(dup) == 200
        await s.run()

        calls = s.calls("externalcontact/send_welcome_msg")
        codes = Counter(c.body["welcome_code"] for c in calls)
        assert len(calls) == N and len(codes) == N and set(codes.values()) == {1}
        for call in calls:
            grant = s.state.welcome_codes[call.body["welcome_code"]]
            assert call.at - grant.issued_at < 20
        assert len(s.state.delivered_messages(kind="welcome")) == N
        assert len(s.calls("externalcontact/mark_tag")) == N * 4 // 5
        for state, out in sent:
            relation = s.state.follow(CHANNELS[state][0], out.fields["ExternalUserID"])
            assert relation is not None
            tags = {f"{s.state.tag_groups[s.state.tags[t].group_id].group_name}/{s.state.tags[t].name}"
                    for t in relation.tag_ids}
            assert tags == CHANNELS[state][1], (state, tags)
        # N events, plus the internal "apply channel tags" events of customers who arrived
        # before their channel's tags existed in WeCom (no `scrm channels sync` ran here).
        counts = await s.runtime.inbox.counts()
        assert set(counts) == {"done"} and counts["done"] >= N
