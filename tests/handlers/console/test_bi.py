"""``GET /api/v1/reports/NAME`` for the bank's BI, over real HTTP on SQLite and PostgreSQL: a
missing or wrong token is 401, a good one gets the report as JSON or CSV (the bytes of ``scrm
report``), a scoped token sees its departments only (403 outside), every call is audited, and the
token never shows in a response, the audit log or the log. ``scrm console bi-token`` prints a
token once and the configuration line that admits it."""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import secrets
import tomllib
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from sqlalchemy import select

from handlers.console.cli import cmd_console
from handlers.console.models import ConsoleAudit
from handlers.console.report import cmd_report, parse
from handlers.contacts.api import Follow
from scrm.cli_support import UserError
from tests.conftest import make_settings
from tests.handlers.console import cockpit_script as sc
from tests.handlers.console.support import console_stack
from tests.support.stack import Stack

WHOLE = "scrmbi_" + secrets.token_urlsafe(32)
WEST = "scrmbi_" + secrets.token_urlsafe(32)
WEST_BRANCH = "杭州分行/城西支行"
# (userid, how many customers they added on the day asked for)
ADDS = {"zhangwei": 3, "chenjing": 1, "gaofei": 2}


def entry(name: str, token: str, scope: str = "") -> dict[str, str]:
    return {"name": name, "sha256": hashlib.sha256(token.encode()).hexdigest(), **({"scope": scope} if scope else {})}


TOKENS = [entry("powerbi", WHOLE), entry("west", WEST, WEST_BRANCH)]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _audit(s: Stack) -> list[ConsoleAudit]:
    async with s.runtime.sessions() as db:
        return list((await db.scalars(select(ConsoleAudit).order_by(ConsoleAudit.id))).all())


async def _seed(s: Stack) -> date:
    """Customers added two days ago (local), and nothing else that day."""
    day = s.clock.now().astimezone(sc.TZ).date() - timedelta(days=2)
    at = datetime.combine(day, time(10), sc.TZ).astimezone(UTC)
    async with s.runtime.sessions() as db, db.begin():
        assert not (await db.scalars(select(Follow.id).where(Follow.created_at >= at - timedelta(hours=10),
                                                              Follow.created_at < at + timedelta(hours=14)))).all()
        for userid, n in ADDS.items():
            for i in range(n):
                db.add(Follow(userid=userid, external_userid=f"wmBI{userid}{i}", created_at=at, status="active"))
    return day


@pytest.fixture
def log_text(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    caplog.set_level(logging.DEBUG)
    yield caplog


async def test_tokens_scopes_formats_and_audit(db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                              log_text: pytest.LogCaptureFixture) -> None:
    async with console_stack(db_url, tmp_path, console={"bi_tokens": TOKENS}) as s:
        day = await _seed(s)
        url = f"/api/v1/reports/cockpit?since={day}&until={day}"

        # No token, a wrong one, another scheme: 401, one line, nothing of the figures.
        for headers in ({}, bearer("scrmbi_" + secrets.token_urlsafe(32)), bearer(""),
                        {"Authorization": f"Basic {WHOLE}"}, {"Authorization": WHOLE}):
            resp = await s.client.get(url, headers=headers)
            text = await resp.text()
            assert resp.status == 401 and len(text.splitlines()) == 1 and "added" not in text, headers

        # The whole bank, as JSON: the same bytes as `scrm report`.
        resp = await s.client.get(url, headers=bearer(WHOLE))
        assert resp.status == 200 and resp.content_type == "application/json"
        body = await resp.text()
        data: dict[str, Any] = json.loads(body)
        assert data["figures"]["added"] == {"current": sum(ADDS.values()), "previous": 0}
        assert await cmd_report(parse(["cockpit", "--since", str(day), "--until", str(day)]), s.settings,
                                s.clock) == 0
        assert capsys.readouterr().out == body

        # By branch, as CSV: one figure a line.
        resp = await s.client.get(url + "&by=branch&format=csv", headers=bearer(WHOLE))
        assert resp.status == 200 and resp.content_type == "text/csv"
        csv_text = await resp.text()
        assert f"rows,{WEST_BRANCH},added,4,0\n" in csv_text
        assert "rows,杭州分行/城东支行,added,2,0\n" in csv_text

        # A token scoped to a branch: its own figures; narrower is fine; outside is 403.
        resp = await s.client.get(url, headers=bearer(WEST))
        assert resp.status == 200
        assert json.loads(await resp.text())["figures"]["added"]["current"] == 4
        resp = await s.client.get(url + f"&dept={quote(sc.WEST_WEALTH)}", headers=bearer(WEST))
        assert json.loads(await resp.text())["figures"]["added"]["current"] == 1
        for dept in ("杭州分行", sc.EAST_RETAIL):
            resp = await s.client.get(url + f"&dept={quote(dept)}", headers=bearer(WEST))
            assert resp.status == 403 and len((await resp.text()).splitlines()) == 1, dept
        resp = await s.client.get("/api/v1/reports/tasks?days=7&by=manager", headers=bearer(WEST))
        rows = json.loads(await resp.text())["rows"]
        assert {r["unit"] for r in rows} == {u for u, (_n, d) in sc.DIRECTORY.items() if d.startswith(WEST_BRANCH)}

        # Bad input: one line, 4xx.
        for path, status in (("/api/v1/reports/nope", 404), (url + "&format=xml", 400), (url + "&by=region", 400),
                             ("/api/v1/reports/cockpit?since=2026-02-30", 400),
                             (f"/api/v1/reports/cockpit?since={day}&until={day - timedelta(days=1)}", 400)):
            resp = await s.client.get(path, headers=bearer(WHOLE))
            text = await resp.text()
            assert resp.status == status and len(text.splitlines()) == 1 and "Traceback" not in text, path

        # Every call with a valid token audited, under the token's name, refusals too; calls
        # without one are warnings in the log, not audit rows (anyone can send those).
        assert log_text.text.count("BI request refused") == 5
        rows_ = await _audit(s)
        seen = [(r.actor, r.action, r.detail.get("status")) for r in rows_]
        assert seen.count(("bi:powerbi", "bi_report", 200)) == 2
        assert seen.count(("bi:west", "bi_report", 200)) == 3
        assert seen.count(("bi:west", "forbidden", 403)) == 2
        assert sum(1 for a, _x, st in seen if a == "bi:powerbi" and st in (400, 404)) == 5
        assert len(seen) == 2 + 3 + 2 + 5
        assert all(r.role == "bi" and r.target.startswith("/api/v1/reports/") for r in rows_)

        # The token is nowhere: not in the audit log, not in the log.
        for token in (WHOLE, WEST):
            assert not [r for r in rows_ if token in r.target or token in json.dumps(r.detail)]
            assert token not in log_text.text
            assert hashlib.sha256(token.encode()).hexdigest() not in log_text.text


async def test_bi_token_prints_a_token_and_the_line_that_admits_it(sqlite_url: str, tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    args = argparse.Namespace(console_command="bi-token", token_name="finebi", scope=WEST_BRANCH + "/")
    assert cmd_console(args, make_settings(sqlite_url)) == 0
    out, err = capsys.readouterr()
    token = out.strip()
    assert len(out.splitlines()) == 1 and len(token) >= 40
    line = next(x.strip().rstrip(",") for x in err.splitlines() if x.strip().startswith("{"))
    assert token not in err
    config = tomllib.loads(f"t = {line}")["t"]
    assert config == {"name": "finebi", "sha256": hashlib.sha256(token.encode()).hexdigest(), "scope": WEST_BRANCH}
    # A second token is another token.
    assert cmd_console(args, make_settings(sqlite_url)) == 0
    assert capsys.readouterr().out.strip() != token

    # The printed line admits the printed token, with its scope.
    async with console_stack(sqlite_url, tmp_path, console={"bi_tokens": [config]}) as s:
        resp = await s.client.get("/api/v1/reports/tasks", headers=bearer(token))
        assert resp.status == 200
        assert json.loads(await resp.text())["scope"]["dept"] == WEST_BRANCH
        resp = await s.client.get(f"/api/v1/reports/tasks?dept={quote(sc.EAST_RETAIL)}", headers=bearer(token))
        assert resp.status == 403


def test_bad_token_names_are_refused(tmp_path: Path) -> None:
    settings = make_settings(f"sqlite+aiosqlite:///{tmp_path}/x.db",
                             console={"bi_tokens": [entry("taken", WHOLE)]})
    for name, scope in (("bad name", None), ("x" * 33, None), ("taken", None), ("ok", " / ")):
        with pytest.raises(UserError):
            cmd_console(argparse.Namespace(console_command="bi-token", token_name=name, scope=scope), settings)
