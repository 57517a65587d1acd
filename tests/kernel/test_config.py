"""Configuration: TOML + env overrides, validation errors that name the key, masked secrets."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import pytest

from handlers.crm.settings import crm_settings
from scrm.kernel.config import ConfigError, masked_dump
from scrm.kernel.logs import JsonFormatter, TextFormatter, log_context
from scrm.main import load_settings


def test_toml_then_env_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "scrm.toml"
    cfg.write_text('[server]\nport = 9000\n[wecom]\ncorp_id = "ww1"\nsecret = "s3cret"\n')
    monkeypatch.setenv("SCRM_SERVER__PORT", "9100")
    settings = load_settings(cfg)
    assert settings.server.port == 9100
    assert settings.wecom.corp_id == "ww1"
    assert settings.database.url == "sqlite+aiosqlite:///./scrm.db"


def test_errors_name_the_key_and_its_env_variable(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text('[server]\nport = "eighty"\n[wecom]\nencoding_aes_key = "short"\n[database]\nurl = "mysql://x"\n')
    with pytest.raises(ConfigError) as err:
        load_settings(cfg)
    text = str(err.value)
    assert "server.port (env SCRM_SERVER__PORT)" in text
    assert "wecom.encoding_aes_key" in text and "43" in text
    assert "database.url" in text


def test_unknown_key_and_missing_file_are_errors(tmp_path: Path) -> None:
    cfg = tmp_path / "typo.toml"
    cfg.write_text("[server]\nprot = 1\n")
    with pytest.raises(ConfigError, match=r"server\.prot"):
        load_settings(cfg)
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "nope.toml")


def test_time_zone_and_crons_are_checked_on_load_not_when_a_job_first_runs(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text('[playbook]\ntimezone = "Asia/Shanghia"\n[crm]\nnightly_cron = "30 25 * * *"\n'
                   '[radar]\ndigest_cron = "0 18 * *"\n')
    with pytest.raises(ConfigError) as err:
        load_settings(cfg)
    assert str(err.value).splitlines() == [
        f"{cfg}: playbook.timezone (env SCRM_PLAYBOOK__TIMEZONE): unknown time zone 'Asia/Shanghia'; "
        "use an IANA name such as Asia/Shanghai",
        f"{cfg}: crm.nightly_cron (env SCRM_CRM__NIGHTLY_CRON): bad cron expression '30 25 * * *': "
        "Error validating expression '25': the last value (25) is higher than the maximum value (23)",
        f"{cfg}: radar.digest_cron (env SCRM_RADAR__DIGEST_CRON): bad cron expression '0 18 * *': "
        "Wrong number of fields; got 4, expected 5",
    ]
    # An empty nightly_cron turns the job off; it is not an error.
    assert crm_settings(load_settings(None, crm={"nightly_cron": ""})).nightly_cron == ""


def test_secrets_are_masked_in_dumps_and_reprs(tmp_path: Path) -> None:
    settings = load_settings(None, wecom={"secret": "top-secret-value", "token": "Tok123",
                                          "encoding_aes_key": "a" * 43})
    dumped = json.dumps(masked_dump(settings))
    assert "top-secret-value" not in dumped and "Tok123" not in dumped and "a" * 43 not in dumped
    assert "top-secret-value" not in repr(settings)


def test_json_logs_carry_the_event_context() -> None:
    record = logging.LogRecord("scrm.test", logging.INFO, __file__, 1, "hello %s", ("world",), None)
    record.__dict__["outbox_id"] = 7
    with log_context(inbox_id=42):
        line = JsonFormatter().format(record)
    data = json.loads(line)
    assert data["msg"] == "hello world" and data["inbox_id"] == 42 and data["outbox_id"] == 7


def test_customers_ids_in_log_fields_are_pseudonyms_unless_shown() -> None:
    record = logging.LogRecord("scrm.test", logging.INFO, __file__, 1, "welcome sent", (), None)
    record.__dict__.update(external_userid="wmSECRET1", userid="zhangwei", customer="郑十四")
    with log_context(crm_id="CRM-77"):
        masked = json.loads(JsonFormatter().format(record))
        shown = json.loads(JsonFormatter(mask_personal=False).format(record))
        text = TextFormatter().format(record)
    expected = {k: "anon:" + hashlib.sha256(v.encode()).hexdigest()[:16]
                for k, v in (("external_userid", "wmSECRET1"), ("customer", "郑十四"), ("crm_id", "CRM-77"))}
    assert {k: masked[k] for k in expected} == expected
    assert masked["userid"] == "zhangwei"  # staff ids are how operators work: shown
    assert (shown["external_userid"], shown["crm_id"]) == ("wmSECRET1", "CRM-77")
    assert "wmSECRET1" not in text and "郑十四" not in text and expected["external_userid"] in text
    assert load_settings(None).log.personal_data == "mask"
