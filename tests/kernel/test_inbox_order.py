"""Inbox order: welcome events overtake a backlog but never their own relation's earlier events;
events of different relations run concurrently, one relation's in arrival order."""

from __future__ import annotations

import asyncio

from scrm.adapters.wecom import events as ev
from scrm.adapters.wecom.crypto import WeComCrypto
from scrm.kernel.clock import FakeClock
from scrm.kernel.dispatch import Router
from tests.conftest import TEST_AES_KEY, TEST_CORP_ID, TEST_TOKEN, make_settings
from tests.fakes.wecom_sender import add_contact_xml, event_xml, post_event
from tests.support.service import drain, running_service

CRYPTO = WeComCrypto(TEST_TOKEN, TEST_AES_KEY, TEST_CORP_ID)


def recording_router(log: list[str]) -> Router:
    router = Router("record")

    @router.on(ev.AddExternalContact)
    async def on_add(event: ev.AddExternalContact) -> None:
        log.append(f"add:{event.external_user_id}")

    @router.on(ev.EditExternalContact)
    async def on_edit(event: ev.EditExternalContact) -> None:
        log.append(f"edit:{event.external_user_id}")

    @router.on(ev.DelFollowUser)
    async def on_del(event: ev.DelFollowUser) -> None:
        log.append(f"del:{event.external_user_id}")

    return router


def edit_xml(ext: str, t: int) -> str:
    return event_xml("edit_external_contact", create_time=t, UserID="zhangwei", ExternalUserID=ext)


async def test_a_welcome_event_overtakes_the_backlog(db_url: str) -> None:
    log: list[str] = []
    settings = make_settings(db_url, inbox={"batch_size": 1, "concurrency": 1})
    async with running_service(settings, clock=FakeClock(), routers=[recording_router(log)]) as (rt, client):
        for i in range(5):
            await post_event(client, CRYPTO, edit_xml(f"wmOld{i}", 1763870000 + i))
        await post_event(client, CRYPTO, add_contact_xml("wmNew", create_time=1763870100, welcome_code="WCnew"))
        await drain(rt)
    assert log == ["add:wmNew", *(f"edit:wmOld{i}" for i in range(5))]


async def test_a_welcome_event_never_overtakes_its_own_relations_earlier_event(db_url: str) -> None:
    """The customer deleted the manager and added them again: the delete is handled first, or the
    relation would end up lost."""
    log: list[str] = []
    settings = make_settings(db_url, inbox={"batch_size": 1, "concurrency": 1})
    async with running_service(settings, clock=FakeClock(), routers=[recording_router(log)]) as (rt, client):
        await post_event(client, CRYPTO, edit_xml("wmOther", 1763870000))
        await post_event(client, CRYPTO, event_xml("del_follow_user", create_time=1763870001, UserID="zhangwei",
                                                   ExternalUserID="wmBack"))
        await post_event(client, CRYPTO, add_contact_xml("wmBack", create_time=1763870002, welcome_code="WCback"))
        await drain(rt)
    assert log.index("del:wmBack") < log.index("add:wmBack")


async def test_different_relations_run_concurrently_one_relations_in_order(db_url: str) -> None:
    spans: list[tuple[str, str]] = []  # (moment, event)
    router = Router("slow")

    @router.on(ev.EditExternalContact)
    async def on_edit(event: ev.EditExternalContact) -> None:
        name = f"{event.external_user_id}@{event.create_time}"
        spans.append(("start", name))
        for _ in range(5):  # a WeCom call in flight: other events may run meanwhile
            await asyncio.sleep(0)
        spans.append(("end", name))

    settings = make_settings(db_url, inbox={"concurrency": 4})
    async with running_service(settings, clock=FakeClock(), routers=[router]) as (rt, client):
        for ext, t in (("wmX", 1), ("wmY", 2), ("wmX", 3), ("wmZ", 4)):
            await post_event(client, CRYPTO, edit_xml(ext, 1763870000 + t))
        assert await drain(rt) == 4
    order = [f"{moment}:{name}" for moment, name in spans]
    # Different relations overlap: the second starts before the first ends.
    assert order.index("start:wmY@1763870002") < order.index("end:wmX@1763870001")
    # One relation's events never overlap and keep their order.
    assert order.index("end:wmX@1763870001") < order.index("start:wmX@1763870003")


async def test_a_group_chat_event_waits_for_every_earlier_event(db_url: str) -> None:
    """A customer added just before joining a group: the join is handled after the add, so the
    group's handlers know the customer (different order keys, yet causally ordered)."""
    spans: list[str] = []
    router = Router("causal")

    @router.on(ev.AddExternalContact)
    async def on_add(event: ev.AddExternalContact) -> None:
        spans.append(f"start:add:{event.external_user_id}")
        for _ in range(5):
            await asyncio.sleep(0)
        spans.append(f"end:add:{event.external_user_id}")

    @router.on(ev.ExternalChatUpdate)
    async def on_join(event: ev.ExternalChatUpdate) -> None:
        spans.append("start:join")

    settings = make_settings(db_url, inbox={"concurrency": 4})
    async with running_service(settings, clock=FakeClock(), routers=[router]) as (rt, client):
        await post_event(client, CRYPTO, add_contact_xml("wmJoiner", create_time=1763870001, welcome_code=""))
        await post_event(client, CRYPTO, event_xml("update", event="change_external_chat", create_time=1763870002,
                                                   ChatId="wrFlash", UpdateDetail="add_member", JoinScene="1",
                                                   MemChangeCnt="1"))
        assert await drain(rt) == 2
    assert spans.index("end:add:wmJoiner") < spans.index("start:join")


async def test_one_customers_events_never_run_side_by_side_on_two_instances(db_url: str) -> None:
    settings = make_settings(db_url)
    clock = FakeClock()
    async with running_service(settings, clock=clock, routers=[recording_router([])]) as (a, client), \
            running_service(settings, clock=clock, routers=[recording_router([])]) as (b, _):
        await post_event(client, CRYPTO, edit_xml("wmShared", 1763870001))
        await post_event(client, CRYPTO, edit_xml("wmShared", 1763870002))
        await post_event(client, CRYPTO, edit_xml("wmOther", 1763870003))
        first = await a.inbox._claim(10)  # A takes the oldest of each customer
        assert sorted(r["order_key"] for r in first) == ["customer:wmOther", "customer:wmShared"]
        assert await b.inbox._claim(10) == []  # B may not start wmShared's second while A has the first
        for row in first:
            await a.inbox._process_row(row, a.dispatcher, a.handler_context())
        [second] = await b.inbox._claim(10)
        shared_first = next(r for r in first if r["order_key"] == "customer:wmShared")
        assert second["order_key"] == "customer:wmShared" and second["id"] > shared_first["id"]
