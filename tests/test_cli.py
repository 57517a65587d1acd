"""The `scrm` command: db upgrade, inbox list/show/replay, outbox list, config show, clear errors."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import update

from scrm.adapters.db.engine import make_engine, make_sessionmaker
from scrm.cli import main
from scrm.kernel.clock import SystemClock
from scrm.kernel.events import InternalEvent
from scrm.kernel.inbox import Inbox
from scrm.kernel.models import InboxEvent
from tests.conftest import make_settings


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


async def _seed_dead_event(url: str) -> None:
    settings = make_settings(url)
    engine = make_engine(url)
    inbox = Inbox(engine, make_sessionmaker(engine), settings.inbox, SystemClock())
    inbox.writer.start()
    event = InternalEvent(source="crm", kind="crm.event", at=SystemClock().now(), payload={"crm_id": "C9"})
    await inbox.put_internal(event, "e1")
    await inbox.writer.stop()
    async with engine.begin() as conn:
        await conn.execute(update(InboxEvent).values(status="dead", last_error="boom", attempts=8))
    await engine.dispose()


def test_db_upgrade_creates_a_fresh_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("SCRM_DATABASE__URL", f"sqlite+aiosqlite:///{tmp_path}/fresh.db")
    code, out, _ = run(["db", "upgrade"], capsys)
    assert code == 0 and "upgraded" in out
    assert (tmp_path / "fresh.db").exists()


def test_inbox_list_show_replay(sqlite_url: str, monkeypatch: pytest.MonkeyPatch,
                                capsys: pytest.CaptureFixture[str]) -> None:
    asyncio.run(_seed_dead_event(sqlite_url))
    monkeypatch.setenv("SCRM_DATABASE__URL", sqlite_url)
    code, out, _ = run(["inbox", "list", "--status", "dead"], capsys)
    assert code == 0 and "dead" in out and "crm.event" in out and "boom" in out
    code, out, _ = run(["inbox", "show", "1"], capsys)
    assert code == 0 and '"crm_id": "C9"' in out
    code, out, _ = run(["inbox", "replay", "--all-dead"], capsys)
    assert code == 0 and out.startswith("1 event(s) queued again")
    code, out, _ = run(["inbox", "stats"], capsys)
    assert '"pending": 1' in out
    code, _, err = run(["inbox", "show", "999"], capsys)
    assert code == 2 and "no inbox event 999" in err


def test_outbox_list_on_empty_database(sqlite_url: str, monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("SCRM_DATABASE__URL", sqlite_url)
    code, out, _ = run(["outbox", "list"], capsys)
    assert code == 0 and "(no actions)" in out


def test_config_show_masks_and_bad_config_is_one_clear_line(monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("SCRM_WECOM__SECRET", "hunter2-secret")
    code, out, _ = run(["config", "show"], capsys)
    assert code == 0 and "hunter2-secret" not in out and "**********" in out
    monkeypatch.setenv("SCRM_SERVER__PORT", "not-a-port")
    code, _, err = run(["config", "show"], capsys)
    assert code == 2 and "server.port" in err and "Traceback" not in err
