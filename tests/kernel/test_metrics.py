"""``GET /metrics`` over HTTP: backlogs from the database, worker and playbook state."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from aiohttp.test_utils import TestClient

from scrm.adapters.wecom.crypto import WeComCrypto
from scrm.kernel.clock import FakeClock
from scrm.kernel.models import DueJob
from tests.conftest import TEST_AES_KEY, TEST_CORP_ID, TEST_TOKEN, make_settings
from tests.fakes.wecom_sender import add_contact_xml, post_event
from tests.support.service import drain, running_service, spine_routers

CRYPTO = WeComCrypto(TEST_TOKEN, TEST_AES_KEY, TEST_CORP_ID)
SAMPLE = re.compile(r"^(\w+)(\{[^}]*\})? (\S+)$")


async def scrape(client: TestClient[Any, Any]) -> dict[str, float]:
    resp = await client.get("/metrics")
    assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    samples: dict[str, float] = {}
    for line in (await resp.text()).splitlines():
        if line.startswith("#"):
            continue
        match = SAMPLE.match(line)
        assert match is not None, line  # every line is valid exposition text
        samples[match[1] + (match[2] or "")] = float(match[3])
    return samples


async def test_metrics_follow_the_backlogs(db_url: str) -> None:
    clock = FakeClock()
    async with running_service(make_settings(db_url), clock=clock, routers=spine_routers()) as (runtime, client):
        first = await scrape(client)
        assert first['scrm_inbox_events{status="pending"}'] == 0
        assert first["scrm_inbox_oldest_pending_seconds"] == 0
        assert first["scrm_playbook_loaded"] == 0  # this test service loads no playbook
        assert first['scrm_instances{state="beating"}'] == 0  # workers off: not registered
        await runtime.liveness.register()
        assert (await scrape(client))['scrm_instances{state="beating"}'] == 1

        await post_event(client, CRYPTO, add_contact_xml("wmA"))
        await post_event(client, CRYPTO, add_contact_xml("wmB"))
        async with runtime.sessions() as session, session.begin():
            await runtime.outbox.add(session, "m:1", "message/send", {"touser": "zhangwei"})
            now = clock.now()
            session.add(DueJob(job_key="stuck", kind="noop", trigger={}, next_run_at=now - timedelta(minutes=5)))
            session.add(DueJob(job_key="later", kind="noop", trigger={}, next_run_at=now + timedelta(hours=1)))
        clock.advance(30)
        busy = await scrape(client)
        assert busy['scrm_instances{state="silent"}'] == 1  # 30 s without a beat
        assert busy['scrm_inbox_events{status="pending"}'] == 2
        assert busy["scrm_inbox_oldest_pending_seconds"] == 30
        assert busy['scrm_outbox_actions{status="pending"}'] == 1
        assert busy["scrm_outbox_oldest_pending_seconds"] == 30
        assert busy["scrm_scheduler_overdue_jobs"] == 1

        assert await drain(runtime) == 2
        after = await scrape(client)
        assert after['scrm_inbox_events{status="pending"}'] == 0 and after['scrm_inbox_events{status="dead"}'] == 0
        assert after["scrm_inbox_oldest_pending_seconds"] == 0


async def test_metrics_show_each_worker(sqlite_url: str) -> None:
    async with running_service(make_settings(sqlite_url), workers=True, routers=spine_routers()) as (_, client):
        samples = await scrape(client)
    workers = {k: v for k, v in samples.items() if k.startswith("scrm_worker_up")}
    assert workers['scrm_worker_up{worker="inbox-worker"}'] == 1 and workers['scrm_worker_up{worker="scheduler"}'] == 1
    assert set(workers.values()) == {1.0}
