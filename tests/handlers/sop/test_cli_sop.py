"""``scrm sop validate | plan | schema`` from an ops admin's chair."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from ruamel.yaml import YAML
from sqlalchemy import func, select

from handlers.contacts.models import Customer, Follow, Member
from handlers.groups.models import GroupChat
from handlers.tags.models import FollowTag, Tag, TagGroup
from scrm.adapters.db.engine import make_engine, make_sessionmaker
from scrm.cli import main
from scrm.kernel.models import OutboxAction
from tests.handlers.sop.schema_keywords import plain, unknown_keywords
from tests.support.playbooks import REPO, write_shipped_playbook

ISSUE = re.compile(r"^(sop|materials)/[\w/.-]+\.yaml:\d+: [\w.\[\]-]+: \S.*$")


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(argv)
    return code, capsys.readouterr().out


def use_playbook(monkeypatch: pytest.MonkeyPatch, sop: Path, materials: Path) -> None:
    monkeypatch.setenv("SCRM_PLAYBOOK__SOP_DIR", str(sop))
    monkeypatch.setenv("SCRM_PLAYBOOK__MATERIALS_DIR", str(materials))


def test_validate_prints_every_error_as_file_line_key_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    sop, materials = tmp_path / "sop", tmp_path / "materials"
    shutil.copytree(REPO / "sop", sop)
    shutil.copytree(REPO / "materials", materials)
    use_playbook(monkeypatch, sop, materials)
    code, out = run(["sop", "validate"], capsys)
    assert code == 0 and out.splitlines()[-1].startswith("ok: 3 calendars, 4 paths, 9 reminders")

    cal = sop / "calendars" / "payroll.yaml"
    cal.write_text(cal.read_text().replace('{day: 61, at: "10:00"', '{day: 61, at: "25:10"'))
    path = sop / "paths" / "payroll-wealth.yaml"
    path.write_text(path.read_text().replace("send: wealth-plan-after-payday", "send: wealth-plan-after-paydya"))
    code, out = run(["sop", "validate"], capsys)
    assert code == 2
    problems = [line for line in out.splitlines() if not line.startswith("warning: ")]
    assert problems == [
        "sop/calendars/payroll.yaml:26: steps[1].at: bad time '25:10': expected \"HH:MM\" between 00:00 and 23:59",
        "sop/paths/payroll-wealth.yaml:12: steps[0].send: unknown material 'wealth-plan-after-paydya'; "
        "did you mean 'wealth-plan-after-payday'?",
    ]
    assert all(ISSUE.match(line) for line in problems)


def test_validate_warns_a_month_ahead_and_strict_fails_on_it(monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    use_playbook(monkeypatch, REPO / "sop", REPO / "materials")
    # Three weeks before the shipped wealth materials expire (2027-03-31).
    code, out = run(["sop", "validate", "--date", "2027-03-10"], capsys)
    warnings = [line for line in out.splitlines() if "expires on 2027-03-31 (in 21 days)" in line]
    assert code == 0 and warnings, out
    assert all(line.startswith("warning: materials/") and "; then skipped: sop/" in line for line in warnings)
    code, out = run(["sop", "validate", "--strict", "--date", "2027-03-10"], capsys)
    assert code == 2 and out.splitlines()[-1].startswith("refused (--strict): ")
    assert any(line.startswith("error: materials/") and "(in 21 days)" in line for line in out.splitlines())

    # The day after: still valid (the service starts), every skipped step named.
    code, out = run(["sop", "validate", "--date", "2027-04-01"], capsys)
    gone = "expired on 2027-03-31 (valid_until); skipped until fixed: "
    expired = [line for line in out.splitlines() if gone in line]
    assert code == 0 and expired and out.splitlines()[-1].startswith("ok: "), out


def _errors(schema: dict[str, Any], ref: str, data: Any) -> list[str]:
    """Every validation error of ``data`` against ``ref`` (a "#/$defs/..." of ``schema``)."""
    validator = Draft202012Validator({**schema, "$ref": ref})
    return [f"{e.json_path}: {e.message}" for e in validator.iter_errors(data)]


def test_schema_is_json_schema_that_the_shipped_playbook_satisfies(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(["sop", "schema"], capsys)
    assert code == 0
    schema = json.loads(out)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(schema)
    assert unknown_keywords(schema) == []  # an editor ignores what is not a keyword
    yaml = YAML(typ="safe", pure=True)
    checked = 0
    for glob, ref in schema["x-scrm-files"].items():
        for f in sorted(REPO.glob(glob)):
            data = plain(yaml.load(f.read_text()))
            assert _errors(schema, ref, data) == [], f
            checked += 1
    assert checked >= 15
    # It does say no: a wrong type, an unknown key, a bad time.
    policy = plain(yaml.load((REPO / "sop" / "policy.yaml").read_text()))
    bad = {**policy, "manager_daily_tasks": "many", "quiet_hour": "21:00-08:30"}
    found = _errors(schema, schema["x-scrm-files"]["sop/policy.yaml"], bad)
    assert any("manager_daily_tasks" in e for e in found) and any("quiet_hour" in e for e in found)


async def _seed(url: str) -> None:
    engine = make_engine(url)
    added = datetime(2026, 10, 31, 7, 0, tzinfo=UTC)  # 2026-10-31 15:00 Shanghai
    try:
        async with make_sessionmaker(engine)() as s, s.begin():
            s.add(Member(userid="zhangwei", name="张伟"))
            s.add(TagGroup(group_id="g-pref", name="偏好"))
            s.add(Tag(tag_id="t-quiet", group_id="g-pref", name="免打扰"))
            for ext in ("wmA", "wmOptOut"):
                s.add(Customer(external_userid=ext, name=ext, updated_at=added))
                s.add(Follow(userid="zhangwei", external_userid=ext, created_at=added))
            s.add(FollowTag(userid="zhangwei", external_userid="wmOptOut", tag_id="t-quiet", added_at=added))
            created = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)
            for chat in ("wrOne", "wrTwo"):
                s.add(GroupChat(chat_id=chat, name=chat, owner="zhangwei", group_type="regional", created_at=created,
                                updated_at=created))
    finally:
        await engine.dispose()


async def _outbox_rows(url: str) -> int:
    engine = make_engine(url)
    try:
        async with make_sessionmaker(engine)() as s:
            return int(await s.scalar(select(func.count()).select_from(OutboxAction)) or 0)
    finally:
        await engine.dispose()


async def test_plan_shows_each_day_with_counts_skips_and_carry_overs(db_url: str, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    calendar = """\
calendar: plan
name: 预览
group_type: regional
steps:
  - {id: hello-group, day: 0, at: "10:00", send: t-text}
  - {id: weekly, day: 1, at: "12:10", send: t-link}
  - {id: call-round, day: 3, at: "10:00", task: t-task}
"""
    path = """\
path: hello
name: 问候
when: {}
steps:
  - {id: hello, on: "added_at + 2 days", at: "10:00", send: t-text}
"""
    limit = {"sop/policy.yaml": {"manager_daily_tasks: 30": "manager_daily_tasks: 1"}}
    sop, materials = write_shipped_playbook(tmp_path, calendars={"plan": calendar}, paths={"hello": path},
                                            edits=limit)
    await _seed(db_url)
    use_playbook(monkeypatch, sop, materials)
    monkeypatch.setenv("SCRM_DATABASE__URL", db_url)
    code = await asyncio.to_thread(main, ["sop", "plan", "--days", "3", "--start", "2026-11-02"])
    out = capsys.readouterr().out
    assert code == 0
    assert out.splitlines() == [
        "2026-11-02 周一: 3 sends, 1 skipped",
        "          2 × 10:00 calendar:plan hello-group → group",
        "          1 × 10:00 path:hello hello → private",
        "    skipped       1 × opt-out tag 偏好/免打扰",
        "2026-11-03 周二: 2 sends, 0 skipped",
        "          2 × 12:10 calendar:plan weekly → group",
        "2026-11-04 周三: 0 sends, 0 skipped",
    ], out
    code = await asyncio.to_thread(main, ["sop", "plan", "--days", "1", "--start", "2026-11-05"])
    out = capsys.readouterr().out
    assert out.splitlines() == [
        "2026-11-05 周四: 1 sends, 0 skipped, 1 carried over",
        "          1 × 10:00 calendar:plan call-round → task",
        "    carried over       1 × 10:00 calendar:plan call-round → task "
        "(manager_daily_tasks 1 reached for zhangwei)",
    ], out
    assert await _outbox_rows(db_url) == 0  # a preview writes nothing
