"""A backfill that stops after page k (a crash, a WeCom error) goes on from page k+1 and ends
with the state of an uninterrupted run, no row twice; one process runs a corp's backfill at a time."""

from __future__ import annotations

from pathlib import Path

import pytest

from handlers.backfill import progress
from handlers.backfill.context import PageDone
from handlers.backfill.runner import run_backfill
from scrm.adapters.wecom.errors import WeComError
from tests.handlers.backfill.support import OWNER, context, mirror_relations, row_counts, seed, wecom_relations
from tests.support.stack import stack


class Crash(Exception):
    """The process dies right after a page committed."""


async def test_crash_after_page_k_resumes_at_page_k_plus_one(db_url: str, tmp_path: Path) -> None:
    async with stack(db_url, tmp_path) as s:
        seed(s, 120, members=3, groups=6, group_size=10)
        calls = s.calls  # batch/get_by_user requests the sandbox received, in order

        def crash_after_5(done: PageDone) -> None:
            if done.stage == "relations" and done.pages == 5:
                raise Crash

        with pytest.raises(Crash):
            await run_backfill(context(s, page_limit=10, on_page=crash_after_5), trigger="start")
        async with s.runtime.sessions() as session:
            stage = await progress.stage_of(session, s.settings.wecom.corp_id, "relations")
            run = await progress.run_of(session, s.settings.wecom.corp_id)
        assert (stage.status, stage.pages, stage.items) == ("running", 5, 50)
        saved = dict(stage.position)
        assert saved["cursor"] and run is not None and run.status == "running" and "Crash" in (run.last_error or "")
        before = len(calls("externalcontact/batch/get_by_user"))

        outcome = await run_backfill(context(s, page_limit=10), trigger="start")
        assert outcome.ran
        resumed = calls("externalcontact/batch/get_by_user")[before:]
        # the rerun's first read is the page after the last one written, not page 1
        assert resumed[0].body["cursor"] == saved["cursor"] and resumed[0].body["userid_list"] == saved["chunk"]
        lines = {line.stage: line for line in outcome.stages}
        # 130 relations (the demo's 10 too) in pages of ≤10 per member chunk, each page written once
        assert lines["relations"].items == 130 and lines["relations"].status == "done"
        assert await mirror_relations(s) == wecom_relations(s)
        resumed_state, resumed_counts = await mirror_relations(s), await row_counts(s)

        # an uninterrupted run over the same corp ends in the same state, no row twice
        await run_backfill(context(s, page_limit=10), trigger="cli", again=True)
        assert await mirror_relations(s) == resumed_state
        assert await row_counts(s) == resumed_counts
        assert resumed_counts["follow"] == 130 and resumed_counts["group_chat"] == 6 + 3


async def test_a_wecom_error_mid_stage_leaves_it_resumable(sqlite_url: str, tmp_path: Path) -> None:
    async with stack(sqlite_url, tmp_path) as s:
        seed(s, 60, members=2)
        armed = []

        def fail_soon(done: PageDone) -> None:
            if done.stage == "relations" and done.pages == 2 and not armed:
                armed.append(s.server.faults.error("externalcontact/batch/get_by_user", 45009, count=50))

        with pytest.raises(WeComError):
            await run_backfill(context(s, page_limit=10, on_page=fail_soon), trigger="start")
        async with s.runtime.sessions() as session:
            stage = await progress.stage_of(session, s.settings.wecom.corp_id, "relations")
        assert stage.status == "running" and stage.pages >= 2
        s.server.faults.clear()
        assert (await run_backfill(context(s, page_limit=10), trigger="start")).ran
        assert await mirror_relations(s) == wecom_relations(s)
        assert (await row_counts(s))["follow"] == 70


async def test_one_runner_per_corp(sqlite_url: str, tmp_path: Path) -> None:
    async with stack(sqlite_url, tmp_path) as s:
        corp = s.settings.wecom.corp_id
        async with s.runtime.sessions() as session, session.begin():
            assert (await progress.claim(session, corp, "elsewhere", s.clock.now(), 120, trigger="start")).ok
        refused = await run_backfill(context(s), trigger="start")
        assert not refused.ran and "running elsewhere" in refused.reason
        s.clock.advance(121)  # that runner stopped renewing: its lease ran out
        assert (await run_backfill(context(s, owner=OWNER), trigger="start")).ran
        async with s.runtime.sessions() as session:
            run = await progress.run_of(session, corp)
        assert run is not None and run.status == "done" and run.lease_owner is None
