"""Inbox: retries with backoff, dead letter and replay, crash recovery, concurrent workers."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import func, select

from handlers.timeline.models import Timeline
from scrm.adapters.wecom import events as ev
from scrm.adapters.wecom.crypto import WeComCrypto
from scrm.kernel.clock import FakeClock
from scrm.kernel.dispatch import Dispatcher, Router
from scrm.kernel.events import InternalEvent
from scrm.kernel.inbox import backoff_s
from scrm.kernel.models import InboxEvent
from scrm.kernel.service import Runtime
from tests.conftest import TEST_AES_KEY, TEST_CORP_ID, TEST_TOKEN, make_settings
from tests.fakes.wecom_sender import add_contact_xml, post_event
from tests.support.service import drain, running_service, spine_routers, wait_until

CRYPTO = WeComCrypto(TEST_TOKEN, TEST_AES_KEY, TEST_CORP_ID)


def flaky_router(failures: dict[str, int], seen: list[str]) -> Router:
    """A handler that fails the first N times per customer, then records it."""
    router = Router("flaky")

    @router.on(ev.AddExternalContact)
    async def on_add(event: ev.AddExternalContact) -> None:
        left = failures.get(event.external_user_id, 0)
        if left:
            failures[event.external_user_id] = left - 1
            raise RuntimeError("downstream unavailable")
        seen.append(event.external_user_id)

    return router


async def status_of(runtime: Runtime) -> list[tuple[str, int]]:
    async with runtime.sessions() as s:
        return [(r.status, r.attempts) for r in (await s.scalars(select(InboxEvent).order_by(InboxEvent.id))).all()]


async def test_failure_retries_with_backoff_then_succeeds(db_url: str) -> None:
    clock = FakeClock()
    seen: list[str] = []
    async with running_service(make_settings(db_url), clock=clock,
                               routers=[flaky_router({"wmA": 1}, seen)]) as (runtime, client):
        await post_event(client, CRYPTO, add_contact_xml("wmA"))
        await drain(runtime)
        assert await status_of(runtime) == [("pending", 1)]
        assert seen == []
        clock.advance(backoff_s(1, 1.0, 600) - 0.5)
        assert await drain(runtime) == 0  # not due yet
        clock.advance(1)
        assert await drain(runtime) == 1
        assert seen == ["wmA"]
        assert await status_of(runtime) == [("done", 2)]


async def test_poison_event_goes_to_dead_letter_and_replays(db_url: str) -> None:
    clock = FakeClock()
    seen: list[str] = []
    failures = {"wmP": 3}
    async with running_service(make_settings(db_url), clock=clock,
                               routers=[flaky_router(failures, seen)]) as (runtime, client):
        await post_event(client, CRYPTO, add_contact_xml("wmP"))
        for _ in range(3):
            await drain(runtime)
            clock.advance(3600)
        async with runtime.sessions() as s:
            row = (await s.scalars(select(InboxEvent))).one()
        assert (row.status, row.attempts) == ("dead", 3)
        assert row.last_error and "downstream unavailable" in row.last_error
        assert await runtime.inbox.replay() == 1
        assert await drain(runtime) == 1
        assert seen == ["wmP"]
        assert await status_of(runtime) == [("done", 1)]


async def test_crash_between_commit_and_processing_is_processed_once_after_restart(db_url: str) -> None:
    settings = make_settings(db_url, inbox={"lease_s": 30})
    clock = FakeClock()
    async with running_service(settings, clock=clock, routers=spine_routers()) as (runtime, client):
        await post_event(client, CRYPTO, add_contact_xml("wmCrash"))
        # Simulate a worker that claimed the row and then died (process killed mid-work).
        from scrm.kernel.leases import claim
        async with runtime.engine.begin() as conn:
            claimed = await claim(conn, InboxEvent, InboxEvent.status == "pending", ["id"], now=clock.now(),
                                  lease_s=30, owner="dead-worker", limit=10)
        assert len(claimed) == 1
    # "Restart": a new runtime on the same database.
    async with running_service(settings, clock=clock, routers=spine_routers()) as (runtime2, _):
        assert await drain(runtime2) == 0  # still leased by the dead worker
        clock.advance(31)
        assert await drain(runtime2) == 1
        assert await drain(runtime2) == 0
        async with runtime2.sessions() as s:
            n = await s.scalar(select(func.count()).select_from(Timeline).where(Timeline.subject_id == "wmCrash"))
        assert n == 1
        assert await status_of(runtime2) == [("done", 1)]


async def test_workers_wake_on_commit_without_polling_delay(db_url: str) -> None:
    settings = make_settings(db_url)
    async with running_service(settings, workers=True, routers=spine_routers()) as (runtime, client):
        await post_event(client, CRYPTO, add_contact_xml("wmLive"))

        async def processed() -> bool:
            return await status_of(runtime) == [("done", 1)]

        await wait_until(processed)
        resp = await client.get("/healthz")
        data = await resp.json()
        assert resp.status == 200 and data["status"] == "ok", data


async def test_concurrent_workers_process_each_event_once(db_url: str) -> None:
    """Several instances share one database: every event handled exactly once."""
    settings = make_settings(db_url, inbox={"batch_size": 7})
    seen: list[str] = []
    router = Router("count")

    @router.on(ev.AddExternalContact)
    async def on_add(event: ev.AddExternalContact) -> None:
        seen.append(event.external_user_id)
        await asyncio.sleep(0)

    async with running_service(settings, routers=spine_routers()) as (runtime, client):
        for i in range(60):
            await post_event(client, CRYPTO, add_contact_xml(f"wm{i:03d}", create_time=1763870000 + i))
        others = [Runtime(settings, clock=runtime.clock, routers=[router], load_playbook=False) for _ in range(3)]
        try:
            async def work(rt: Runtime) -> None:
                while (await rt.inbox.process_due(rt.dispatcher, rt.handler_context())).total:
                    pass

            await asyncio.gather(*(work(rt) for rt in others))
        finally:
            for rt in others:
                await rt.engine.dispose()
    assert sorted(seen) == [f"wm{i:03d}" for i in range(60)]


async def test_internal_events_share_the_pipeline(db_url: str) -> None:
    got: list[dict[str, Any]] = []
    router = Router("internal")

    # A kind no feature declares stays an untyped InternalEvent (typed kinds: tests/kernel/test_events.py).
    @router.on("test.internal")
    async def on_internal(event: InternalEvent) -> None:
        got.append(event.payload)

    async with running_service(make_settings(db_url), routers=[router]) as (runtime, _):
        e = InternalEvent(source="test", kind="test.internal", at=runtime.clock.now(), payload={"crm_id": "C1"})
        assert await runtime.inbox.put_internal(e, "evt-1") is True
        assert await runtime.inbox.put_internal(e, "evt-1") is False
        await drain(runtime)
    assert got == [{"crm_id": "C1"}]


def test_dispatcher_refuses_unknown_dependencies() -> None:
    import pytest

    from scrm.kernel.dispatch import DispatchConfigError

    router = Router("bad")

    @router.on(ev.AddExternalContact)
    async def needs_magic(event: Any, magic: Any) -> None: ...

    with pytest.raises(DispatchConfigError, match="magic"):
        Dispatcher([router], provides=["session"])


async def test_a_stored_callback_carries_its_batchs_time(db_url: str) -> None:
    """The writer sets received_at and next_attempt_at once a batch, from the inbox's clock."""
    clock = FakeClock()
    async with running_service(make_settings(db_url), clock=clock, routers=[]) as (runtime, client):
        clock.advance(90)
        status, _ = await post_event(client, CRYPTO, add_contact_xml("wm_stamp"))
        assert status == 200
        async with runtime.sessions() as db:
            stored = (await db.execute(select(InboxEvent.received_at, InboxEvent.next_attempt_at))).one()
    assert tuple(stored) == (clock.now(), clock.now())
