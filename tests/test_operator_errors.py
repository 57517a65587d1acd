"""Every operator mistake is one clear line on stderr with exit code 2, never a traceback.

Each test runs the real CLI (``main`` in-process, or the ``scrm`` executable where a real process
is needed) the way an operator would trip over the mistake, and asserts exactly one ``scrm:`` line
that names the problem and the fix.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import make_url, text

from scrm.adapters.db.engine import make_engine
from scrm.cli import main
from tests.conftest import PG_ADMIN_URL, TEST_AES_KEY, TEST_CORP_ID, TEST_TOKEN

REPO = Path(__file__).resolve().parents[1]
SCRM = Path(sys.executable).parent / "scrm"
PG = make_url(PG_ADMIN_URL)

WECOM = {"SCRM_WECOM__CORP_ID": TEST_CORP_ID, "SCRM_WECOM__TOKEN": TEST_TOKEN,
         "SCRM_WECOM__ENCODING_AES_KEY": TEST_AES_KEY}
PROJECT_PLAYBOOK = {"SCRM_PLAYBOOK__SOP_DIR": str(REPO / "sop"),
                    "SCRM_PLAYBOOK__MATERIALS_DIR": str(REPO / "materials")}


def one_line(code: int, err: str) -> str:
    """The single ``scrm:`` line of a failed command (asserting exit 2 and no traceback)."""
    assert "Traceback" not in err
    assert code == 2, err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("scrm: "), err
    return lines[0]


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


def refused(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    code, _, err = run(argv, capsys)
    return one_line(code, err)


def run_scrm(argv: list[str], cwd: Path, env: dict[str, str], timeout: float = 60) -> tuple[int, str, str]:
    """The installed ``scrm`` as a separate process (for sockets, and for start-ups that would hang)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("SCRM_")}
    proc = subprocess.run([str(SCRM), *argv], cwd=cwd, env={**base, **env}, capture_output=True, text=True,
                          timeout=timeout)
    return proc.returncode, proc.stdout, proc.stderr


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def service_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """WeCom credentials, the project's playbook and a free port: `scrm serve` could start."""
    env = {**WECOM, **PROJECT_PLAYBOOK, "SCRM_SERVER__PORT": str(free_port()), "SCRM_LOG__FORMAT": "text"}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


def _pg_reachable() -> bool:
    try:
        with socket.create_connection((PG.host or "127.0.0.1", PG.port or 5432), timeout=2):
            return True
    except OSError:
        return False


needs_pg = pytest.mark.skipif(not _pg_reachable(), reason=f"PostgreSQL not reachable at {PG.host}:{PG.port}")


async def _admin(sql: str) -> None:
    engine = make_engine(PG_ADMIN_URL)
    try:
        async with engine.connect() as conn:
            conn2 = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn2.execute(text(sql))
    finally:
        await engine.dispose()


@pytest.fixture
async def empty_pg() -> AsyncIterator[str]:
    """A PostgreSQL database that exists but was never migrated."""
    name = f"scrm_ops_{uuid.uuid4().hex[:10]}"
    await _admin(f'CREATE DATABASE "{name}"')
    try:
        yield PG.set(database=name).render_as_string(hide_password=False)
    finally:
        await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# ------------------------------------------------------------------------------ serve
def test_serve_without_config_names_the_missing_wecom_settings(monkeypatch: pytest.MonkeyPatch,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    for key, value in PROJECT_PLAYBOOK.items():
        monkeypatch.setenv(key, value)
    line = refused(["serve"], capsys)
    assert "[wecom] corp_id, token, encoding_aes_key not set" in line and "scrm serve --sandbox" in line
    assert not Path("scrm.db").exists()  # refused before anything was created


@pytest.mark.parametrize(("argv", "says"), [
    (["serve", "--existing", "100"], "--existing seeds the sandbox's corp: use it with --sandbox"),
    (["serve", "--sandbox", "--existing", "-5"], "--existing must be 0 or more, not -5"),
])
def test_serve_existing_needs_the_sandbox_and_a_count(argv: list[str], says: str,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    assert says in refused(argv, capsys)
    assert not Path("scrm.db").exists()


def test_serve_outside_the_project_folder_names_the_sop_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    for key, value in WECOM.items():
        monkeypatch.setenv(key, value)
    line = refused(["serve"], capsys)
    assert f"sop folder not found: {tmp_path / 'sop'}" in line
    assert "[playbook] sop_dir" in line and f"working directory {tmp_path}" in line


def test_serve_with_an_unknown_time_zone_is_refused_before_listening(service_env: dict[str, str],
                                                                     monkeypatch: pytest.MonkeyPatch,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("SCRM_PLAYBOOK__TIMEZONE", "Asia/Shanghia")
    line = refused(["serve"], capsys)
    assert "playbook.timezone" in line and "unknown time zone 'Asia/Shanghia'" in line


@pytest.mark.parametrize("key", ["radar.digest_cron", "crm.nightly_cron"])
def test_a_bad_cron_is_refused_at_start(key: str, tmp_path: Path, service_env: dict[str, str]) -> None:
    # Before the check, a bad digest_cron started fine and failed every repeat click later: a
    # separate process, so that a service that does start is killed by the timeout.
    section, name = key.split(".")
    env = {**service_env, f"SCRM_{section.upper()}__{name.upper()}": "0 18 * *"}
    code, _, err = run_scrm(["serve"], tmp_path, env)
    line = one_line(code, err)
    assert f"{key} (env SCRM_{section.upper()}__{name.upper()})" in line and "bad cron expression '0 18 * *'" in line


def test_serve_on_a_port_in_use_says_which_port(tmp_path: Path, service_env: dict[str, str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, _, err = run_scrm(["serve"], tmp_path, {**service_env, "SCRM_SERVER__PORT": str(port)})
    line = one_line(code, err)
    assert line == f"scrm: port {port} on 127.0.0.1 is in use: stop the other process or set [server] port"
    assert not (tmp_path / "scrm.db").exists()


def test_serve_with_an_impossible_date_in_the_playbook_is_its_file_line(tmp_path: Path,
                                                                        service_env: dict[str, str]) -> None:
    import shutil

    shutil.copytree(REPO / "sop", tmp_path / "sop")
    shutil.copytree(REPO / "materials", tmp_path / "materials")
    holidays = tmp_path / "sop" / "holidays.yaml"
    holidays.write_text(holidays.read_text(encoding="utf-8").replace("元旦: 2025-01-01", "元旦: 2025-02-30", 1),
                        encoding="utf-8")
    env = {k: v for k, v in service_env.items() if not k.startswith("SCRM_PLAYBOOK__")}
    code, _, err = run_scrm(["serve"], tmp_path, env)  # a process: start-up sets up logging
    line = one_line(code, err)
    assert line.startswith("scrm: sop/holidays.yaml:") and "years.2025.off.元旦: bad date '2025-02-30'" in line


# ------------------------------------------------------------------------------ databases
def test_commands_before_the_first_serve_on_sqlite_leave_no_empty_file(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["inbox", "list"], ["outbox", "list"], ["db", "current"]):
        line = refused(argv, capsys)
        assert f"database {Path.cwd() / 'scrm.db'} does not exist yet" in line
        assert "run `scrm db upgrade` (or `scrm serve`)" in line
        assert not Path("scrm.db").exists()


def test_an_unmigrated_sqlite_file_says_to_upgrade(monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    sqlite3.connect("empty.db").close()
    monkeypatch.setenv("SCRM_DATABASE__URL", "sqlite+aiosqlite:///empty.db")
    line = refused(["inbox", "list"], capsys)
    assert "database empty.db is not migrated (no such table: inbox_event): run `scrm db upgrade`" in line


def test_db_current_says_when_nothing_is_applied(sqlite_url: str, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    sqlite3.connect("empty.db").close()
    monkeypatch.setenv("SCRM_DATABASE__URL", "sqlite+aiosqlite:///empty.db")
    code, out, err = run(["db", "current"], capsys)
    assert (code, out, err) == (0, "no migrations applied; run `scrm db upgrade`\n", "")
    monkeypatch.setenv("SCRM_DATABASE__URL", sqlite_url)
    code, out, _ = run(["db", "current"], capsys)
    assert code == 0 and out.endswith(" (head)\n") and "run `scrm db upgrade`" not in out


def test_postgres_unreachable_names_host_and_port(monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    port = free_port()  # nothing listens there
    monkeypatch.setenv("SCRM_DATABASE__URL", f"postgresql+asyncpg://scrm@127.0.0.1:{port}/scrm")
    line = refused(["inbox", "list"], capsys)
    assert line == (f"scrm: cannot connect to PostgreSQL at 127.0.0.1:{port} (connection refused; "
                    "is the server running?): check [database] url")


@needs_pg
def test_postgres_wrong_role_names_the_role(monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    url = PG.set(username="scrm_no_such_role", password=None).render_as_string(hide_password=False)
    monkeypatch.setenv("SCRM_DATABASE__URL", url)
    line = refused(["inbox", "list"], capsys)
    assert "refused role 'scrm_no_such_role'" in line and "check the user in [database] url" in line


@needs_pg
def test_postgres_missing_database_says_to_create_it(monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("SCRM_DATABASE__URL", PG.set(database="scrm_no_such_db").render_as_string(hide_password=False))
    line = refused(["outbox", "list"], capsys)
    assert "database 'scrm_no_such_db' does not exist" in line and "createdb scrm_no_such_db" in line


@needs_pg
def test_postgres_not_migrated_says_to_upgrade(empty_pg: str, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("SCRM_DATABASE__URL", empty_pg)
    line = refused(["inbox", "list"], capsys)
    assert "is not migrated" in line and line.endswith("run `scrm db upgrade`")
    code, out, _ = run(["db", "current"], capsys)
    assert code == 0 and out == "no migrations applied; run `scrm db upgrade`\n"


@needs_pg
def test_serve_on_unmigrated_postgres_is_refused_before_listening(empty_pg: str, service_env: dict[str, str],
                                                                  monkeypatch: pytest.MonkeyPatch,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("SCRM_DATABASE__URL", empty_pg)
    line = refused(["serve"], capsys)
    assert "not migrated (no migrations applied): run `scrm db upgrade`" in line


# ------------------------------------------------------------------------------ sop plan
def test_sop_plan_with_an_impossible_start_day(monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    for key, value in PROJECT_PLAYBOOK.items():
        monkeypatch.setenv(key, value)
    line = refused(["sop", "plan", "--start", "2026-13-01"], capsys)
    assert line == "scrm: --start 2026-13-01: not a date (month must be in 1..12); expected YYYY-MM-DD, e.g. 2026-11-02"


def test_sop_plan_days_are_bounded(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    for key, value in PROJECT_PLAYBOOK.items():
        monkeypatch.setenv(key, value)
    line = refused(["sop", "plan", "--days", "100000"], capsys)
    assert line == "scrm: --days 100000: must be between 1 and 366"


def test_sop_plan_shows_progress_on_stderr(sqlite_url: str, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    for key, value in {**PROJECT_PLAYBOOK, "SCRM_DATABASE__URL": sqlite_url}.items():
        monkeypatch.setenv(key, value)
    code, out, err = run(["sop", "plan", "--days", "2", "--start", "2026-11-02"], capsys)
    assert code == 0 and out.splitlines()[0].startswith("2026-11-02 周一: ")
    assert err.startswith("sop plan 100.0% 2 days")


def test_sop_plan_outside_the_project_folder(capsys: pytest.CaptureFixture[str]) -> None:
    line = refused(["sop", "plan"], capsys)
    assert "sop folder not found" in line and "[playbook] sop_dir" in line


# ------------------------------------------------------------------------------ --config placement
@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "other.toml"
    path.write_text(f'[server]\nport = 9123\n[playbook]\nsop_dir = "{REPO / "sop"}"\n'
                    f'materials_dir = "{REPO / "materials"}"\n', encoding="utf-8")
    return path


def test_config_is_accepted_after_the_sub_command(config_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["config", "show", "--config", str(config_file)], capsys)
    assert code == 0 and '"port": 9123' in out
    code, out, _ = run(["sop", "validate", "-c", str(config_file)], capsys)
    assert code == 0 and out.splitlines()[-1].startswith("ok: ")
    code, out, _ = run(["-c", "missing.toml", "config", "show", "-c", str(config_file)], capsys)
    assert code == 0 and '"port": 9123' in out  # the later one wins
    line = refused(["serve", "--config", "missing.toml"], capsys)
    assert line == "scrm: config file not found: missing.toml"

