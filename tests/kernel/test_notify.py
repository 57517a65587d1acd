"""Notices to members: in order per member, merged when due together, never dropped by WeCom's
30-a-minute limit even when two instances send."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta

from sqlalchemy import select

from scrm.kernel.clock import FakeClock
from scrm.kernel.models import OutboxAction
from scrm.kernel.notify import tell_member
from scrm.kernel.service import Runtime
from scrm.sandbox import SANDBOX_AGENT_ID, SANDBOX_CORP_ID, SANDBOX_SECRET
from tests.conftest import make_settings
from tests.fakes.sandbox import Sandbox, running_sandbox
from tests.support.service import running_service


async def notify(rt: Runtime, userid: str, texts: list[str], *, prefix: str = "n") -> None:
    async with rt.sessions() as s, s.begin():
        for i, text in enumerate(texts):
            await tell_member(s, rt.outbox, rt.settings, key=f"{prefix}:{userid}:{i}", userid=userid, text=text)


async def send_all(rt: Runtime) -> None:
    while await rt.outbox.process_due():
        pass


def received(sb: Sandbox, userid: str) -> list[str]:
    return [str(d.content["text"]["content"]) for d in sb.state.delivered_messages(kind="app", to=userid)]


async def rows(rt: Runtime) -> list[OutboxAction]:
    async with rt.sessions() as s:
        return list((await s.scalars(select(OutboxAction).order_by(OutboxAction.id))).all())


async def test_notices_due_together_go_out_as_one_message_in_order(db_url: str) -> None:
    clock = FakeClock()
    async with running_sandbox(clock) as sb, running_service(make_settings(db_url), clock=clock,
                                                             wecom=sb.client) as (rt, _):
        sb.state.add_member("zhangwei", "张伟")
        sb.state.add_member("lina", "李娜")
        joins = [f"客户{i}加入了您的快闪群" for i in range(5)]
        await notify(rt, "zhangwei", joins)
        await notify(rt, "lina", ["客户甲已删除您"])
        await send_all(rt)
        [merged] = received(sb, "zhangwei")
        assert merged.startswith("【5条提醒】")
        assert [merged.index(t) for t in joins] == sorted(merged.index(t) for t in joins)
        assert received(sb, "lina") == ["客户甲已删除您"]
        statuses = Counter(r.status for r in await rows(rt))
        assert statuses == Counter(sent=2, merged=4)


async def test_a_notice_held_by_quiet_hours_is_not_merged_into_an_earlier_one(db_url: str) -> None:
    clock = FakeClock()
    async with running_sandbox(clock) as sb, running_service(make_settings(db_url), clock=clock,
                                                             wecom=sb.client) as (rt, _):
        sb.state.add_member("zhangwei", "张伟")
        await notify(rt, "zhangwei", ["现在就发"])
        async with rt.sessions() as s, s.begin():
            await tell_member(s, rt.outbox, rt.settings, key="later", userid="zhangwei", text="明早再发",
                              not_before=clock.now() + timedelta(hours=10))
        await send_all(rt)
        assert received(sb, "zhangwei") == ["现在就发"]
        clock.advance(10 * 3600)
        await send_all(rt)
        assert received(sb, "zhangwei") == ["现在就发", "明早再发"]


async def test_when_the_carrying_message_fails_the_notices_it_carried_fail_with_it(db_url: str) -> None:
    clock = FakeClock()
    async with running_sandbox(clock) as sb, running_service(make_settings(db_url), clock=clock,
                                                             wecom=sb.client) as (rt, _):
        sb.state.add_member("zhangwei", "张伟")
        sb.server.faults.error("message/send", 81013, count=1)  # user/party/tag all invalid
        await notify(rt, "zhangwei", ["一", "二", "三"])
        await send_all(rt)
        assert received(sb, "zhangwei") == []
        assert [r.status for r in await rows(rt)] == ["failed", "failed", "failed"]


async def test_two_instances_deliver_every_notice_to_one_busy_member(db_url: str) -> None:
    """60 joins of a flash group in 30 s, told to its owner by two instances: nothing dropped
    (each instance alone would allow 30 a minute; their shared count keeps both under it, and
    the notices that wait meanwhile go out merged)."""
    clock = FakeClock()
    async with running_sandbox(clock) as sb:
        # Each instance with its own WeCom client, as two processes would have.
        settings = make_settings(db_url, wecom={"corp_id": SANDBOX_CORP_ID, "secret": SANDBOX_SECRET,
                                                "agent_id": SANDBOX_AGENT_ID, "api_base": sb.base_url})
        async with running_service(settings, clock=clock) as (a, _), running_service(settings, clock=clock) as (b, _):
            await _flash_group_joins(sb, clock, a, b)


async def _flash_group_joins(sb: Sandbox, clock: FakeClock, a: Runtime, b: Runtime) -> None:
    sb.state.add_member("zhangwei", "张伟")
    texts = [f"新成员{i:02d}加入" for i in range(60)]
    for i, text in enumerate(texts):  # one join every half second, told by either instance
        await notify(a if i % 2 else b, "zhangwei", [text], prefix=f"join{i}")
        await asyncio.gather(send_all(a), send_all(b))
        clock.advance(0.5)
    for _ in range(100):
        await asyncio.gather(send_all(a), send_all(b))
        if not any(r.status in ("pending", "sending") for r in await rows(a)):
            break
        clock.advance(10)
    assert sb.state.dropped_messages() == []
    delivered = "\n".join(received(sb, "zhangwei"))
    assert [t for t in texts if t not in delivered] == []
