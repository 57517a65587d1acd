"""Hot reload of a running service: `scrm sop reload` (the marker file) or just saving a file.
A playbook with errors is refused with its errors and the last good one keeps running; a good
one takes effect, jobs included."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from pathlib import Path

import pytest
from sqlalchemy import select

from scrm.cli import main
from scrm.db.models import DueJob
from tests.fakes.service import wait_until
from tests.sop_engine.harness import branch, local

START = local("2026-11-02", "09:00")
CHAT = "wrReloadChat"
GOOD = """\
calendar: reload
name: 热加载
group_type: regional
steps:
  - {id: morning, day: 0, at: "10:00", send: t-text}
"""
BROKEN = GOOD + '  - {id: noon, day: 0, at: "11:00", send: t-nope}\n'
BETTER = GOOD + '  - {id: noon, day: 0, at: "11:00", send: t-link}\n'


async def test_bad_playbook_is_refused_and_a_good_one_taken(db_url: str, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    async with branch(db_url, tmp_path, START, calendars={"reload": GOOD}) as b:
        await b.seed(groups=[(CHAT, "regional", START)])
        good = b.runtime.playbook.current
        sop = b.settings.playbook.sop_dir
        monkeypatch.setenv("SCRM_PLAYBOOK__SOP_DIR", str(sop))
        monkeypatch.setenv("SCRM_PLAYBOOK__MATERIALS_DIR", str(b.settings.playbook.materials_dir))
        watcher = asyncio.create_task(b.runtime.watch_playbook(poll_s=0.01))
        try:
            # Edited without a visible file change: only `scrm sop reload` makes the service look.
            cal = sop / "calendars" / "reload.yaml"
            before = cal.stat()
            cal.write_text(BROKEN)
            os.utime(cal, ns=(before.st_atime_ns, before.st_mtime_ns))
            caplog.set_level(logging.ERROR, logger="scrm.playbook")
            assert await asyncio.to_thread(main, ["sop", "reload"]) == 0

            async def refused() -> bool:
                return any(r.getMessage().startswith("playbook reload refused") for r in caplog.records)

            await wait_until(refused)
            (record,) = [r for r in caplog.records if r.getMessage().startswith("playbook reload refused")]
            assert any("sop/calendars/reload.yaml:6: steps[1].send: unknown material 't-nope'" in e
                       for e in record.errors), record.__dict__
            assert b.runtime.playbook.current is good
            await b.run_until(local("2026-11-02", "10:05"))  # the last good playbook keeps running
            assert [c.body["text"]["content"] for c in b.calls("externalcontact/add_msg_template")] == [
                "各位好，本周营业时间不变。"]

            cal.write_text(BETTER)  # saving a fixed file is enough

            async def taken() -> bool:
                async with b.runtime.sessions() as s:
                    job = await s.scalar(select(DueJob).where(DueJob.job_key == "sop.due:11:00"))
                return b.runtime.playbook.current is not good and job is not None and job.enabled

            await wait_until(taken)
            await b.run_until(local("2026-11-02", "11:05"))
            calls = b.calls("externalcontact/add_msg_template")
            assert len(calls) == 2 and calls[1].body["attachments"][0]["msgtype"] == "link"
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
