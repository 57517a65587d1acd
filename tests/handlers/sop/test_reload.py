"""Hot reload of a running service: `scrm sop reload` (over the control socket) or just saving a
file. A playbook with errors is refused with every error, the command says so (exit 2) and the
last good one keeps running; a good one takes effect, jobs included, with its version."""

from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import Path

import pytest
from sqlalchemy import select

from scrm.cli import main
from scrm.kernel.control import ControlServer
from scrm.kernel.models import DueJob
from tests.handlers.sop.seeding import ROUTERS, local, seed
from tests.support.playbooks import write_shipped_playbook
from tests.support.service import wait_until
from tests.support.stack import stack

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


def _files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*")}


async def test_reload_reports_its_outcome_and_a_save_is_enough(db_url: str, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    async with stack(db_url, tmp_path, start=START, demo=False, routers=ROUTERS,
                     playbook=write_shipped_playbook(tmp_path, calendars={"reload": GOOD})) as b:
        await seed(b, groups=[(CHAT, "regional", START)])
        good, first_version = b.runtime.playbook.current, b.runtime.playbook.version
        sop = b.settings.playbook.sop_dir
        socket = tmp_path / "run" / "scrm.sock"
        monkeypatch.setenv("SCRM_PLAYBOOK__SOP_DIR", str(sop))
        monkeypatch.setenv("SCRM_PLAYBOOK__MATERIALS_DIR", str(b.settings.playbook.materials_dir))
        monkeypatch.setenv("SCRM_SERVER__CONTROL_SOCKET", str(socket))
        control = ControlServer(socket, b.runtime.playbook, b.runtime.reload_playbook)
        await control.start()
        watcher = asyncio.create_task(b.runtime.watch_playbook(poll_s=0.01))
        checkout = _files(sop.parent)
        try:
            # Edited without a visible file change: only `scrm sop reload` makes the service look.
            cal = sop / "calendars" / "reload.yaml"
            before = cal.stat()
            cal.write_text(BROKEN)
            os.utime(cal, ns=(before.st_atime_ns, before.st_mtime_ns))
            capsys.readouterr()
            assert await asyncio.to_thread(main, ["sop", "reload"]) == 2
            out = capsys.readouterr().out.splitlines()
            assert out == ["sop/calendars/reload.yaml:6: steps[1].send: unknown material 't-nope'",
                           f"refused: the service keeps running version {first_version}"]
            assert b.runtime.playbook.current is good and b.runtime.playbook.reload_failed
            await b.run_until(local("2026-11-02", "10:05"))  # the last good playbook keeps running
            assert [c.body["text"]["content"] for c in b.calls("externalcontact/add_msg_template")] == [
                "各位好，本周营业时间不变。"]

            cal.write_text(BETTER)  # saving a fixed file is enough

            async def taken() -> bool:
                async with b.runtime.sessions() as s:
                    job = await s.scalar(select(DueJob).where(DueJob.job_key == "sop.due:11:00"))
                return b.runtime.playbook.current is not good and job is not None and job.enabled

            await wait_until(taken)
            assert not b.runtime.playbook.reload_failed
            await b.run_until(local("2026-11-02", "11:05"))
            calls = b.calls("externalcontact/add_msg_template")
            assert len(calls) == 2 and calls[1].body["attachments"][0]["msgtype"] == "link"

            # Asked again: applied, with the version of these files, and nothing left in the checkout.
            assert await asyncio.to_thread(main, ["sop", "reload"]) == 0
            (line,) = capsys.readouterr().out.splitlines()[-1:]
            assert line == f"applied: playbook version {b.runtime.playbook.version} is running"
            assert b.runtime.playbook.version != first_version
            assert _files(sop.parent) == checkout
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
            await control.stop()
    assert not socket.exists()


async def test_reload_without_a_service_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("SCRM_SERVER__CONTROL_SOCKET", str(tmp_path / "nobody.sock"))
    assert await asyncio.to_thread(main, ["sop", "reload"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no running service" in err and "Traceback" not in err
