"""The nightly reconciliation job: registered at start, runs once per night, resumes, re-tags drift."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML
from sqlalchemy import select, update

import handlers.crm.handlers as crm_handlers
from handlers.crm import feature as crm_feature
from handlers.crm.events import CrmNightly
from handlers.crm.jobs import JOB_KEY, register_nightly
from scrm.adapters.db.engine import make_engine, make_sessionmaker
from scrm.kernel.clock import FakeClock
from scrm.kernel.config import ConfigError
from scrm.kernel.inbox import Inbox
from scrm.kernel.models import DueJob, InboxEvent, OutboxAction
from scrm.kernel.scheduler import Scheduler
from scrm.playbook.models import TagsFile
from tests.conftest import make_settings
from tests.handlers.crm.receiver import CRM_TAGS, CrmStack, crm_stack

MARK_TAG = "externalcontact/mark_tag"
NIGHT = datetime(2026, 11, 2, 18, 30, tzinfo=UTC)  # 02:30 on 3 November in Shanghai (the default cron)
WANT = {"客户等级/V3", "产品持有/养老金"}


async def _job(c: CrmStack) -> DueJob:
    async with c.s.runtime.sessions() as session:
        job = await session.scalar(select(DueJob).where(DueJob.job_key == JOB_KEY))
    assert job is not None
    return job


async def _nightly_event_ids(c: CrmStack) -> list[int]:
    async with c.s.runtime.sessions() as session:
        return list((await session.scalars(select(InboxEvent.id).where(InboxEvent.event == CrmNightly.KIND))).all())


async def test_nightly_job_runs_once_resumes_and_reconciles(db_url: str, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    async with crm_stack(db_url, tmp_path) as c:
        s, rt = c.s, c.s.runtime
        job = await _job(c)  # put on the scheduler by the service's start-up
        assert (job.kind, job.next_run_at, job.enabled) == (CrmNightly.KIND, NIGHT, True)
        await c.seed_quietly([{"crm_id": f"K{i}", "external_userid": ext,
                               "attributes": {"tier": "V3", "products": ["pension"]}}
                              for i, ext in enumerate(s.ids.customers.values())])
        s.clock.set(NIGHT - timedelta(minutes=1))
        await rt.scheduler.tick()  # (the playbook's SOP jobs tick too)
        await s.run()
        assert await _nightly_event_ids(c) == [] and s.calls(MARK_TAG) == []
        # Past the cron time two instances tick at once: one run.
        s.clock.set(NIGHT + timedelta(minutes=1))
        other = Scheduler(rt.engine, rt.sessions, rt.settings.scheduler, s.clock, rt.inbox)
        await asyncio.gather(rt.scheduler.tick(), other.tick())
        assert len(await _nightly_event_ids(c)) == 1
        # The instance dies in the second chunk (3 relations a chunk): the first chunk's calls go out.
        real_apply = crm_handlers.apply_chunk
        applied = {"n": 0}

        async def crashing_apply(*a: Any, **kw: Any) -> None:
            applied["n"] += 1
            if applied["n"] == 2:
                raise RuntimeError("power cut")
            await real_apply(*a, **kw)

        monkeypatch.setattr(crm_handlers, "apply_chunk", crashing_apply)
        await s.run()
        assert len(s.calls(MARK_TAG)) == 3
        monkeypatch.setattr(crm_handlers, "apply_chunk", real_apply)
        s.clock.advance(60)  # past the inbox's retry backoff: the failed chunk runs again
        await s.run()
        pairs = c.mark_tag_pairs()
        assert len(pairs) == 10 and set(pairs.values()) == {1}  # 8 customers, 2 with two managers
        assert all(c.tag_names(u, e) >= WANT for u, e in pairs)
        # Replaying the whole night, or ticking again, sends nothing more.
        ids = await _nightly_event_ids(c)
        assert len(ids) == 4  # ceil(10 / 3) chunks, one event each
        assert await rt.inbox.replay(ids, dead_only=False) == 4
        await s.run()
        await rt.scheduler.tick()
        await s.run()
        assert len(s.calls(MARK_TAG)) == 10 and len(await _nightly_event_ids(c)) == 4
        # A manager strips a CRM-owned tag by hand during the day; the next night puts it back,
        # even though the service restarted after 02:30 and before its scheduler ticked.
        user, ext = next(iter(pairs))
        pension = next(t for t, tag in s.state.tags.items() if tag.name == "养老金")
        s.clock.set(NIGHT + timedelta(hours=12))
        await s.driver.edit_external_contact(user, ext, remove_tags=[pension])
        await s.run()
        assert "产品持有/养老金" not in c.tag_names(user, ext)
        s.clock.set(NIGHT + timedelta(days=1, minutes=5))
        assert await crm_feature.register_jobs(rt)
        assert (await _job(c)).next_run_at == NIGHT + timedelta(days=1)  # not moved to the night after
        await rt.scheduler.tick()
        await s.run()
        assert len(await _nightly_event_ids(c)) == 8  # 4 chunks each night
        assert c.tag_names(user, ext) >= WANT
        assert len(s.calls(MARK_TAG)) == 11 and c.mark_tag_pairs()[(user, ext)] == 2


async def test_nightly_cron_setting(sqlite_url: str) -> None:
    clock = FakeClock()
    engine = make_engine(sqlite_url)
    sessions = make_sessionmaker(engine)
    settings = make_settings(sqlite_url)
    scheduler = Scheduler(engine, sessions, settings.scheduler, clock, Inbox(engine, sessions, settings.inbox, clock))

    tag_map = TagsFile.model_validate(YAML(typ="safe").load(CRM_TAGS)).groups
    managers_only = {name: spec for name, spec in tag_map.items() if spec.owner == "manager"}

    async def register(tag_groups: Any = tag_map, **crm: Any) -> DueJob | None:
        async with sessions() as session, session.begin():
            await register_nightly(session, scheduler, make_settings(sqlite_url, crm=crm), tag_groups)
        async with sessions() as session:
            return await session.scalar(select(DueJob).where(DueJob.job_key == JOB_KEY))

    try:
        assert await register(managers_only) is None  # nothing the CRM owns: no job
        job = await register()
        assert job is not None and job.enabled and job.next_run_at == NIGHT
        job = await register(nightly_cron="")  # empty: off
        assert job is not None and not job.enabled
        job = await register(nightly_cron="0 23 * * *")
        assert job is not None and job.enabled and job.next_run_at == datetime(2026, 11, 2, 15, 0, tzinfo=UTC)
        job = await register(None)  # no playbook: off
        assert job is not None and not job.enabled
        with pytest.raises(ConfigError, match=r"crm\.nightly_cron .*'61 2 \* \* \*'"):
            await register(nightly_cron="61 2 * * *")
    finally:
        await engine.dispose()


async def test_nightly_chunk_waits_while_the_outbox_is_full(db_url: str, tmp_path: Path) -> None:
    # mark_tag at 600/min: the outbox may hold 2 minutes of sync calls, 1,200.
    async with crm_stack(db_url, tmp_path, wecom={"api_limits_per_minute": {MARK_TAG: 600}}) as c:
        s, rt = c.s, c.s.runtime
        await c.seed_quietly([{"crm_id": f"K{i}", "external_userid": ext, "attributes": {"tier": "V3"}}
                              for i, ext in enumerate(s.ids.customers.values())])
        await c.queue_pending_calls(1200)
        s.clock.set(NIGHT + timedelta(minutes=1))
        await rt.scheduler.tick()
        await s.run()
        assert s.calls(MARK_TAG) == []  # the first chunk waits ...
        async with rt.sessions() as session:
            wait = await session.scalar(select(DueJob).where(DueJob.job_key.startswith("crm.nightly.wait:")))
        # ... until the queue should be down to half: 600 calls at 10/s.
        assert wait is not None and wait.next_run_at == s.clock.now() + timedelta(seconds=60)
        async with rt.sessions() as session, session.begin():  # the outbox sends them meanwhile
            await session.execute(update(OutboxAction).where(OutboxAction.idempotency_key.startswith(
                "crmtag:earlier:")).values(status="sent"))
        s.clock.advance(61)
        await rt.scheduler.tick()
        await s.run()
        pairs = c.mark_tag_pairs()
        assert len(pairs) == 10 and set(pairs.values()) == {1}
        assert all("客户等级/V3" in c.tag_names(u, e) for u, e in pairs)
