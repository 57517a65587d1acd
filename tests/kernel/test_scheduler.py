"""Scheduler: cron in Asia/Shanghai, occurrence keys, misfires, several instances at once."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from sqlalchemy import func, select

from scrm.kernel.clock import FakeClock
from scrm.kernel.dispatch import Router
from scrm.kernel.events import InternalEvent
from scrm.kernel.models import InboxEvent, Occurrence
from scrm.kernel.scheduler import Scheduler, TriggerSpec
from scrm.kernel.service import Runtime
from tests.conftest import make_settings
from tests.support.service import drain, running_service

DAILY_0930 = TriggerSpec(type="cron", expr="30 9 * * *", timezone="Asia/Shanghai")


def test_cron_fires_in_shanghai_time() -> None:
    now = datetime(2026, 11, 2, 0, 0, tzinfo=UTC)  # 08:00 in Shanghai
    first = DAILY_0930.next_after(None, now)
    assert first == datetime(2026, 11, 2, 1, 30, tzinfo=UTC)
    assert DAILY_0930.next_after(first, now) == datetime(2026, 11, 3, 1, 30, tzinfo=UTC)


async def _scheduler(runtime: Runtime) -> Scheduler:
    return Scheduler(runtime.engine, runtime.sessions, runtime.settings.scheduler, runtime.clock, runtime.inbox)


async def test_daily_job_enqueues_each_occurrence_once(db_url: str) -> None:
    clock = FakeClock(datetime(2026, 11, 2, 0, 0, tzinfo=UTC))
    got: list[str] = []
    router = Router("jobs")

    @router.on("test.daily")
    async def on_daily(event: InternalEvent) -> None:
        got.append(event.payload["fire_time"])

    async with running_service(make_settings(db_url), clock=clock, routers=[router]) as (runtime, _):
        sched = await _scheduler(runtime)
        async with runtime.sessions() as s, s.begin():
            await sched.put_job(s, "daily-report", "test.daily", DAILY_0930, misfire_grace_s=600)
        assert await sched.tick() == 0
        clock.advance(hours=1, minutes=31)  # 09:31 Shanghai
        assert await sched.tick() == 1
        assert await sched.tick() == 0  # already advanced
        for _ in range(3):  # three more days, ticking every day at 09:35
            clock.advance(hours=24)
            await sched.tick()
        await drain(runtime)
    assert got == [f"2026-11-0{d}T01:30:00+00:00" for d in (2, 3, 4, 5)]


async def test_misfire_beyond_grace_is_skipped_with_a_reason(db_url: str) -> None:
    clock = FakeClock(datetime(2026, 11, 2, 0, 0, tzinfo=UTC))
    async with running_service(make_settings(db_url), clock=clock) as (runtime, _):
        sched = await _scheduler(runtime)
        async with runtime.sessions() as s, s.begin():
            await sched.put_job(s, "birthday", "test.birthday", DAILY_0930, misfire_grace_s=600)
        clock.advance(hours=3 * 24 + 2)  # the service was down for three days
        assert await sched.tick() == 0
        async with runtime.sessions() as s:
            skipped = (await s.scalars(select(Occurrence).order_by(Occurrence.occurrence_key))).all()
            queued = await s.scalar(select(func.count()).select_from(InboxEvent))
        assert [o.outcome for o in skipped] == ["skipped"] * 4
        assert skipped[0].reason is not None and "misfire" in skipped[0].reason
        assert queued == 0


async def test_several_instances_tick_safely(db_url: str) -> None:
    clock = FakeClock(datetime(2026, 11, 2, 0, 0, tzinfo=UTC))
    settings = make_settings(db_url)
    async with running_service(settings, clock=clock) as (runtime, _):
        sched = await _scheduler(runtime)
        async with runtime.sessions() as s, s.begin():
            for i in range(20):
                await sched.put_job(s, f"job-{i}", "test.job", DAILY_0930)
        clock.advance(hours=2)
        others = [Runtime(settings, clock=clock, load_playbook=False) for _ in range(3)]
        try:
            results = await asyncio.gather(*(
                Scheduler(rt.engine, rt.sessions, settings.scheduler, clock, rt.inbox).tick() for rt in others))
        finally:
            for rt in others:
                await rt.engine.dispose()
        assert sum(results) == 20
        async with runtime.sessions() as s:
            assert await s.scalar(select(func.count()).select_from(InboxEvent)) == 20
