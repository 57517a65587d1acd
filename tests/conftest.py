"""Shared fixtures: storage parametrized over SQLite (always) and PostgreSQL (when reachable).

PostgreSQL tests get a fresh database per test session (``scrm_test_<random>``) on
127.0.0.1:5432, migrated once and emptied between tests. When the server is not reachable they
are skipped with a loud reason (and a warning line at the end of the run).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from scrm.adapters.db import migrate
from scrm.adapters.db.engine import make_engine
from scrm.kernel.config import Settings
from scrm.main import load_all_models, load_settings

SHARED = Path(__file__).resolve().parents[2] / "shared"
VECTORS = json.loads((SHARED / "wecom" / "vectors.json").read_text()) if (SHARED / "wecom").is_dir() else None
PG_ADMIN_URL = os.environ.get("SCRM_TEST_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")

# The official vector's token, key and receive id: the service under test uses them, so the
# recorded official callbacks can be replayed through the real HTTP endpoint.
OFFICIAL = (VECTORS or {}).get("vectors", [{}])[0]
TEST_TOKEN = OFFICIAL.get("token", "QDG6eK")
TEST_AES_KEY = OFFICIAL.get("aes_key", "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C")
TEST_CORP_ID = OFFICIAL.get("receive_id", "wx5823bf96d3bd56c7")

_pg_state: dict[str, Any] = {}
_shift: dict[str, Any] = {}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--wall-clock-days", type=int, default=0,
        help="move the machine's wall clock this many days ahead for the whole run (time-machine): "
             "proves that nothing reads it outside scrm/clock.py and that no fixture date goes stale")


def pytest_configure(config: pytest.Config) -> None:
    days = int(config.getoption("--wall-clock-days") or 0)
    if days:
        import time_machine

        from scrm.kernel.clock import SystemClock

        # tick=True: the moved clock keeps running; monotonic time (asyncio) is left alone.
        traveller = time_machine.travel(SystemClock().now() + timedelta(days=days), tick=True)
        traveller.start()
        _shift.update(traveller=traveller, days=days)


def pytest_unconfigure(config: pytest.Config) -> None:
    if "traveller" in _shift:
        _shift.pop("traveller").stop()


def _pg_available() -> str | None:
    """Create the session's PostgreSQL database once; returns its URL or None (with a reason)."""
    if "url" in _pg_state or "reason" in _pg_state:
        return _pg_state.get("url")

    async def create() -> str:
        name = f"scrm_test_{uuid.uuid4().hex[:10]}"
        admin = make_engine(PG_ADMIN_URL)
        try:
            async with admin.connect() as conn:
                conn2 = await conn.execution_options(isolation_level="AUTOCOMMIT")
                await conn2.execute(text(f'CREATE DATABASE "{name}"'))
        finally:
            await admin.dispose()
        return PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name

    try:
        url = asyncio.run(asyncio.wait_for(create(), 5))
    except Exception as exc:
        _pg_state["reason"] = f"PostgreSQL not reachable at {PG_ADMIN_URL}: {type(exc).__name__}: {exc}"
        return None
    migrate.upgrade(url)
    _pg_state["url"] = url
    return url


def _drop_pg() -> None:
    url = _pg_state.get("url")
    if not url:
        return
    name = url.rsplit("/", 1)[1]

    async def drop() -> None:
        admin = make_engine(PG_ADMIN_URL)
        try:
            async with admin.connect() as conn:
                conn2 = await conn.execution_options(isolation_level="AUTOCOMMIT")
                await conn2.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        finally:
            await admin.dispose()

    asyncio.run(drop())


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    _drop_pg()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if "days" in _shift:
        from scrm.kernel.clock import SystemClock

        terminalreporter.write_line(f"wall clock moved {_shift['days']} days ahead: {SystemClock().now():%Y-%m-%d}")
    if "reason" in _pg_state:
        terminalreporter.write_line(
            f"WARNING: PostgreSQL tests were SKIPPED: {_pg_state['reason']}", red=True, bold=True
        )


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for each test (faster than migrating every time)."""
    path = tmp_path_factory.mktemp("db") / "template.db"
    migrate.upgrade(f"sqlite+aiosqlite:///{path}")
    return path


async def _truncate_pg(url: str) -> None:
    engine = make_engine(url)
    try:
        async with engine.begin() as conn:
            names = ", ".join(f'"{t.name}"' for t in load_all_models().sorted_tables)
            await conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    finally:
        await engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
async def db_url(request: pytest.FixtureRequest, sqlite_template: Path, tmp_path: Path) -> AsyncIterator[str]:
    """A migrated, empty database: SQLite always, PostgreSQL when reachable."""
    if request.param == "sqlite":
        path = tmp_path / "scrm.db"
        shutil.copy(sqlite_template, path)
        yield f"sqlite+aiosqlite:///{path}"
        return
    url = await asyncio.to_thread(_pg_available)
    if url is None:
        pytest.skip(_pg_state["reason"])
    await _truncate_pg(url)
    yield url


@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    """SQLite only, for tests that are about something else than storage."""
    path = tmp_path / "scrm.db"
    shutil.copy(sqlite_template, path)
    return f"sqlite+aiosqlite:///{path}"


def make_settings(db_url: str, **sections: dict[str, Any]) -> Settings:
    base: dict[str, Any] = {
        "database": {"url": db_url},
        "wecom": {"corp_id": TEST_CORP_ID, "token": TEST_TOKEN, "encoding_aes_key": TEST_AES_KEY,
                  "secret": "test-secret", "agent_id": 1000002},
        "inbox": {"backoff_base_s": 1.0, "max_attempts": 3},
        "log": {"format": "text"},
    }
    for name, values in sections.items():
        base[name] = {**base.get(name, {}), **values}
    return load_settings(None, **base)


@pytest.fixture
def vectors() -> dict[str, Any]:
    if VECTORS is None:
        pytest.skip("../shared/wecom/vectors.json not found")
    return VECTORS


@pytest.fixture(autouse=True)
def _no_config_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Tests never read a developer's ./scrm.toml or SCRM_* variables."""
    for key in list(os.environ):
        if key.startswith("SCRM_") and key != "SCRM_TEST_PG_URL":
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    yield


# Browser tests (the console's, the sidebar's) drive Debian's Chromium (``apt-get install
# chromium``; Playwright's own browser downloads are not reachable here). A missing Chromium
# fails these tests loudly rather than skipping them: the README's test command installs it.
CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    if CHROMIUM is None:
        pytest.fail("Chromium not found: install Debian's package (apt-get install -y chromium) "
                    "or set CHROMIUM_PATH to its path", pytrace=False)
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "headless": True}
