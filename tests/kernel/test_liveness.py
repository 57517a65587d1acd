"""The registry of live instances: a dead instance's claims are taken over in seconds, a live one's
never; a restart on the same machine finds its killed predecessor at once."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy import func, select

from handlers.timeline.models import Timeline
from scrm.adapters.wecom.crypto import WeComCrypto
from scrm.kernel.clock import FakeClock
from scrm.kernel.config import Settings
from scrm.kernel.liveness import pid_space, process_start
from scrm.kernel.models import InboxEvent, OutboxAction, ServiceInstance
from scrm.kernel.service import Runtime
from tests.conftest import TEST_AES_KEY, TEST_CORP_ID, TEST_TOKEN, make_settings
from tests.fakes.wecom_sender import add_contact_xml, post_event
from tests.support.service import drain, running_service, spine_routers

CRYPTO = WeComCrypto(TEST_TOKEN, TEST_AES_KEY, TEST_CORP_ID)


def settings_for(db_url: str) -> Settings:
    return make_settings(db_url, inbox={"lease_s": 30}, outbox={"lease_s": 30},
                         liveness={"heartbeat_s": 1, "dead_after_s": 5})


@contextlib.asynccontextmanager
async def two_instances(db_url: str, clock: FakeClock) -> AsyncIterator[tuple[Runtime, Runtime, Any]]:
    """Instances A and B on one database, both registered; A's HTTP client posts callbacks."""
    settings = settings_for(db_url)
    async with running_service(settings, clock=clock, routers=spine_routers()) as (a, client), \
            running_service(settings, clock=clock, routers=spine_routers()) as (b, _):
        await a.liveness.register()
        await b.liveness.register()
        yield a, b, client


async def leases(rt: Runtime) -> list[tuple[str, str | None]]:
    async with rt.sessions() as s:
        rows = (await s.execute(select(InboxEvent.status, InboxEvent.lease_owner).order_by(InboxEvent.id))).all()
    return [(status, owner) for status, owner in rows]


async def timeline_entries(rt: Runtime, ext: str) -> int:
    async with rt.sessions() as s:
        return int(await s.scalar(select(func.count()).select_from(Timeline).where(Timeline.subject_id == ext)) or 0)


async def test_a_silent_instances_claims_are_taken_over_after_dead_after_not_the_lease(db_url: str) -> None:
    clock = FakeClock()
    async with two_instances(db_url, clock) as (a, b, client):
        await post_event(client, CRYPTO, add_contact_xml("wmKilled"))
        claimed = await a.inbox._claim(10)  # A claims the event, then is killed before handling it
        assert len(claimed) == 1
        assert await drain(b) == 0  # leased to A
        assert (await b.liveness.beat()).live == 2
        assert b.wecom.limiter.api_share == 0.5  # two instances: each paces at half WeCom's per-API limit
        clock.advance(4)
        assert (await b.liveness.beat()).reaped == ()  # 4 s of silence: not dead yet
        assert await drain(b) == 0
        clock.advance(2)
        beat = await b.liveness.beat()
        assert beat.reaped == (a.identity.id,) and beat.released == 1
        assert beat.live == 1 and b.wecom.limiter.api_share == 1.0  # B alone takes the whole API limit
        assert await drain(b) == 1  # 6 s after the kill, not 30 s (the lease)
        assert await leases(b) == [("done", None)]
        assert await timeline_entries(b, "wmKilled") == 1
        async with b.sessions() as s:
            assert (await s.scalars(select(ServiceInstance.id))).all() == [b.identity.id]


async def test_a_beating_instance_keeps_its_claims_past_their_lease(db_url: str) -> None:
    clock = FakeClock()
    async with two_instances(db_url, clock) as (a, b, client):
        await post_event(client, CRYPTO, add_contact_xml("wmSlow"))
        await a.inbox._claim(10)  # A works on it for a long time (a slow WeCom call)
        for _ in range(40):  # 40 s, past the 30 s lease: A beats every second
            clock.advance(1)
            await a.liveness.beat()
            assert (await b.liveness.beat()).reaped == ()
        assert await drain(b) == 0
        assert await leases(b) == [("pending", a.identity.id)]


async def test_a_restart_releases_its_killed_predecessors_claims_at_once(db_url: str) -> None:
    """Same machine: the predecessor's process is gone (its pid is free or reused since), so the
    restarted instance does not wait for dead_after. A live process's entry stays."""
    clock = FakeClock()
    child = await asyncio.create_subprocess_exec(sys.executable, "-c", "import time; time.sleep(60)")
    started = process_start(child.pid)
    child.kill()
    await child.wait()
    assert started is not None and process_start(child.pid) != started
    async with running_service(settings_for(db_url), clock=clock, routers=spine_routers()) as (rt, client):
        await post_event(client, CRYPTO, add_contact_xml("wmRestart"))
        now = clock.now()
        async with rt.sessions() as s, s.begin():
            s.add_all([
                ServiceInstance(id="svc:killed", host="here", pid=child.pid, pid_space=pid_space(),
                                process_start=started, started_at=now, heartbeat_at=now),
                # Another instance in this very process (tests run several): alive.
                ServiceInstance(id="svc:neighbour", host="here", pid=rt.identity.pid, pid_space=pid_space(),
                                process_start=rt.identity.process_start, started_at=now, heartbeat_at=now),
            ])
        from scrm.kernel.leases import claim
        async with rt.engine.begin() as conn:
            await claim(conn, InboxEvent, InboxEvent.status == "pending", ["id"], now=now, lease_s=30,
                        owner="svc:killed", limit=10)
        beat = await rt.liveness.register()
        assert beat.reaped == ("svc:killed",) and beat.released == 1
        assert await drain(rt) == 1
        async with rt.sessions() as s:
            assert sorted((await s.scalars(select(ServiceInstance.id))).all()) == sorted(
                ["svc:neighbour", rt.identity.id])


async def test_an_instance_reaped_while_alive_cannot_complete_and_rejoins(db_url: str) -> None:
    """A peer declared A dead (its beats were held up): B handles A's row; A's late completion is
    refused (its transaction rolls back), so the event's effects happen once; A registers again."""
    clock = FakeClock()
    async with two_instances(db_url, clock) as (a, b, client):
        await post_event(client, CRYPTO, add_contact_xml("wmStalled"))
        [row] = await a.inbox._claim(10)
        clock.advance(6)
        assert (await b.liveness.beat()).reaped == (a.identity.id,)
        assert await drain(b) == 1
        assert await a.inbox._process_row(row, a.dispatcher, a.handler_context()) == "lost"
        assert await timeline_entries(b, "wmStalled") == 1
        assert (await a.liveness.beat()).rejoined
        async with a.sessions() as s:
            assert sorted((await s.scalars(select(ServiceInstance.id))).all()) == sorted(
                [a.identity.id, b.identity.id])


async def test_a_clean_stop_gives_its_claims_back(db_url: str) -> None:
    clock = FakeClock()
    async with two_instances(db_url, clock) as (a, b, client):
        await post_event(client, CRYPTO, add_contact_xml("wmStop"))
        await a.inbox._claim(10)
        async with a.sessions() as s, s.begin():
            await a.outbox.add(s, "k1", "message/send", {"touser": "zhangwei"})
        from scrm.kernel.leases import claim
        async with a.engine.begin() as conn:
            await claim(conn, OutboxAction, OutboxAction.status == "pending", ["id"], now=clock.now(), lease_s=30,
                        owner=a.identity.id, limit=10)
        await a.liveness.leave()
        async with b.sessions() as s:
            assert (await s.scalars(select(OutboxAction.lease_owner))).all() == [None]
            assert (await s.scalars(select(ServiceInstance.id))).all() == [b.identity.id]
        assert await drain(b) == 1


async def test_dead_after_must_leave_room_for_missed_beats() -> None:
    import pytest

    from scrm.kernel.config import ConfigError

    with pytest.raises(ConfigError, match="dead_after_s must be at least twice heartbeat_s"):
        make_settings("sqlite+aiosqlite:///x.db", liveness={"heartbeat_s": 3, "dead_after_s": 5})


async def test_claims_made_after_being_declared_dead_are_released_by_the_next_beat(db_url: str) -> None:
    """A was reaped while alive, claimed an event before its next beat re-registered it, and then
    really died: its claim belongs to nobody registered, so B's next beat releases it."""
    clock = FakeClock()
    async with two_instances(db_url, clock) as (a, b, client):
        clock.advance(6)
        assert (await b.liveness.beat()).reaped == (a.identity.id,)
        await post_event(client, CRYPTO, add_contact_xml("wmOrphan"))
        assert len(await a.inbox._claim(10)) == 1  # claimed under an id no longer registered
        beat = await b.liveness.beat()
        assert beat.released == 1
        assert await drain(b) == 1


def test_a_killed_child_not_yet_reaped_counts_as_gone() -> None:
    """A zombie still has /proc/<pid>/stat, but it has exited: its claims must not wait."""
    import os
    import signal
    import time

    pid = os.fork()
    if pid == 0:  # the child: wait to be killed
        time.sleep(60)
        os._exit(0)
    try:
        assert process_start(pid) is not None
        os.kill(pid, signal.SIGKILL)
        for _ in range(500):  # until the kernel has made it a zombie (not reaped: no wait yet)
            if process_start(pid) is None:
                break
            time.sleep(0.01)
        assert process_start(pid) is None
    finally:
        os.waitpid(pid, 0)
