"""The daily digest through the real scheduler on the fake clock: clicks that got no alert of
their own reach the manager at the digest hour (18:00 Asia/Shanghai), once, and only new ones."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select

from handlers.radar.events import RadarDigest
from handlers.radar.handlers import DIGEST_JOB
from scrm.kernel.models import DueJob, InboxEvent
from tests.handlers.radar.data import MATERIALS, ROUTERS, radar
from tests.support.stack import Stack, stack

# 2026-11-02 18:00 in Asia/Shanghai (the default digest_cron "0 18 * * *").
DIGEST_AT = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)


async def _click(s: Stack, link: str, times: int) -> None:
    for _ in range(times):
        assert (await s.open(link))[0] == 302
        s.clock.advance(minutes=3)
    await s.run()


async def _tick(s: Stack) -> int:
    """One scheduler tick, then the events it queued; returns how many digests it fired so far."""
    await s.runtime.scheduler.tick()  # other jobs (the SOP engine's) may fire too
    await s.run()
    async with s.runtime.sessions() as session:
        rows = (await session.scalars(select(InboxEvent.status).where(InboxEvent.event == RadarDigest.KIND))).all()
    assert set(rows) <= {"done"}
    return len(rows)


async def test_digest_job_sends_suppressed_clicks_at_the_digest_hour(db_url: str, tmp_path: Path) -> None:
    async with stack(db_url, tmp_path, materials=MATERIALS, routers=ROUTERS, customers=True, sections=radar()) as s:
        link = s.links.make_link("m-fund", "zhangwei", customer=s.ids.customers["王芳"])
        await _click(s, link, 1)
        assert len(s.app_messages("zhangwei")) == 1  # the alert
        async with s.runtime.sessions() as session:
            assert await session.scalar(select(DueJob).where(DueJob.job_key == DIGEST_JOB)) is None
        await _click(s, link, 3)  # inside the hour: no alerts, counted for the digest
        assert len(s.app_messages("zhangwei")) == 1
        async with s.runtime.sessions() as session:
            job = await session.scalar(select(DueJob).where(DueJob.job_key == DIGEST_JOB))
        assert job is not None and job.kind == RadarDigest.KIND and job.next_run_at == DIGEST_AT

        assert await _tick(s) == 0  # not due yet
        assert len(s.app_messages("zhangwei")) == 1
        s.clock.set(DIGEST_AT)
        assert await _tick(s) == 1
        messages = s.app_messages("zhangwei")
        assert len(messages) == 2
        assert "汇总" in messages[1] and "王芳" in messages[1] and "《稳健理财周报》3 次" in messages[1]

        # The next evening: nothing new was suppressed, so the job fires and says nothing.
        s.clock.set(datetime(2026, 11, 3, 9, 0, tzinfo=UTC))
        await _click(s, link, 2)  # a new alert (the hour is long over), then one suppressed click
        assert len(s.app_messages("zhangwei")) == 3
        s.clock.set(datetime(2026, 11, 3, 10, 0, 5, tzinfo=UTC))
        assert await _tick(s) == 2
        messages = s.app_messages("zhangwei")
        assert len(messages) == 4 and "《稳健理财周报》1 次" in messages[3]
        s.clock.set(datetime(2026, 11, 4, 10, 0, 5, tzinfo=UTC))
        assert await _tick(s) == 3
        assert len(s.app_messages("zhangwei")) == 4
