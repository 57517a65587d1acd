"""`scrm config show` masks the passwords inside URL-valued settings, keeping the rest readable."""

from __future__ import annotations

import json

import pytest

from scrm.cli import main

DB_PASSWORD = "s3cr3t-Db_pw"
HOOK_PASSWORD = "hook:pa$$"  # a colon inside the password: everything after the first one is secret
QUERY_PASSWORD = "q-pw-7781"


def _show(capsys: pytest.CaptureFixture[str]) -> tuple[str, dict[str, dict[str, object]]]:
    assert main(["config", "show"]) == 0
    out = capsys.readouterr().out
    return out, json.loads(out)


def test_database_and_webhook_passwords_never_appear(monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("SCRM_DATABASE__URL", f"postgresql+asyncpg://scrm:{DB_PASSWORD}@db:5432/scrm")
    monkeypatch.setenv("SCRM_CRM__WEBHOOK_URL", f"https://crm:{HOOK_PASSWORD}@crm.bank.example/hook?x=1")
    monkeypatch.setenv("SCRM_SERVER__PUBLIC_URL", f"https://scrm.bank.example/?user=ops&password={QUERY_PASSWORD}")
    out, data = _show(capsys)
    for secret in (DB_PASSWORD, HOOK_PASSWORD, "pa$$", QUERY_PASSWORD):
        assert secret not in out, secret
    # The rest stays readable: user, host, port, database, path and the other parameters.
    assert data["database"]["url"] == "postgresql+asyncpg://scrm:***@db:5432/scrm"
    assert data["crm"]["webhook_url"] == "https://crm:***@crm.bank.example/hook?x=1"
    assert data["server"]["public_url"] == "https://scrm.bank.example/?user=ops&password=***"


def test_urls_without_a_password_are_unchanged(monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("SCRM_DATABASE__URL", "postgresql+asyncpg://scrm@db/scrm")
    monkeypatch.setenv("SCRM_CRM__WEBHOOK_URL", "https://crm.bank.example:8443/hook?tenant=east")
    _, data = _show(capsys)
    assert data["database"]["url"] == "postgresql+asyncpg://scrm@db/scrm"
    assert data["crm"]["webhook_url"] == "https://crm.bank.example:8443/hook?tenant=east"
    assert data["server"]["public_url"] == "http://127.0.0.1:8080"


def test_a_percent_encoded_at_sign_in_the_password_is_masked_whole(monkeypatch: pytest.MonkeyPatch,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("SCRM_DATABASE__URL", "postgresql+asyncpg://scrm:p%40ss%2Fw0rd@db/scrm")
    out, data = _show(capsys)
    assert "p%40ss" not in out and "w0rd" not in out
    assert data["database"]["url"] == "postgresql+asyncpg://scrm:***@db/scrm"
