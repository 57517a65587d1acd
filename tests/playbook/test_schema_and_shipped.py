"""The shipped playbook is valid and says what the design says; the JSON Schema is usable."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from scrm.playbook import Playbook, file_json_schema, load_playbook, playbook_json_schema

from .factory import REPO

TODAY = date(2026, 11, 23)


def shipped() -> Playbook:
    return load_playbook(REPO / "sop", REPO / "materials", today=TODAY)


def test_shipped_playbook_has_no_errors() -> None:
    pb = shipped()
    # The only expected warning: 2027's official schedule is not out yet.
    assert [w.file for w in pb.warnings] == ["sop/holidays.yaml"]
    assert set(pb.calendars) == {"payroll-groups", "elderly-groups", "event-groups"}
    assert set(pb.paths) == {"payroll-wealth", "payroll-mortgage", "payroll-credit-card", "new-contact"}
    assert len(pb.reminders) == 9  # churn-risk: sop/lifecycle.yaml churn_risk stages


def test_shipped_calendars_follow_the_practice() -> None:
    # The rhythm itself (posts per week, the monthly columns) is counted in test_shipped_cadence.
    pb = shipped()
    payroll = pb.calendars["payroll-groups"]
    monthly = {r.key: str(r.date_expr) for r in payroll.recurring if r.every == "month"}
    assert monthly["salary-notice"] == "payday + 1 workday"  # the first workday after payday
    assert pb.group_types["elderly"].member_cap < 100
    event = pb.calendars["event-groups"]
    assert pb.group_types["event"].lifetime_days == 7
    assert event.steps[-1].task is not None and event.steps[-1].day == 7
    mortgage = pb.paths["payroll-mortgage"].steps[0]
    assert [b.otherwise for b in mortgage.branches] == [False, True]


def test_shipped_lookups() -> None:
    pb = shipped()
    welcome = pb.welcome_for("payroll-onboarding")
    assert welcome is not None and welcome.id == "welcome-payroll"
    default = pb.welcome_for("no-such-state")
    assert default is not None and default.id == "welcome-default"
    assert pb.tag_owner("产品持有/代发") == "crm"
    assert pb.tag_owner("偏好/免打扰") == "manager"
    assert pb.classify_group("城西科技园代发福利群", "someone", "wr1") == "payroll"
    assert pb.classify_group("随便聊聊", "chenjing", "wr2") == "vip"
    assert pb.classify_group("随便聊聊", "nobody", "wr3") is None


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [v for k, v in node.items() if k == "$ref"] + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def test_json_schema_is_valid_json_and_self_contained() -> None:
    schema = json.loads(json.dumps(playbook_json_schema(), ensure_ascii=False))
    assert schema["$schema"].startswith("https://json-schema.org/")
    defs = schema["$defs"]
    for ref in _refs(schema):
        assert ref.startswith("#/$defs/") and ref.removeprefix("#/$defs/") in defs, ref
    assert schema["x-scrm-files"]["sop/calendars/*.yaml"] == "#/$defs/file.calendar"
    step = defs["CalendarStep"]["properties"]
    assert step["at"]["pattern"] and "day" in defs["CalendarStep"]["required"]
    assert defs["Branch"]["properties"].keys() >= {"if", "else", "send"}


def test_single_file_schema() -> None:
    schema = file_json_schema("policy")
    json.dumps(schema)
    assert schema["properties"]["quiet_hours"]["examples"] == ["21:00-08:30"]


def test_shipped_playbook_still_loads_after_its_materials_expire() -> None:
    # A compliance date skips steps; it never makes the demo (or a bank's service) refuse to start.
    later = load_playbook(REPO / "sop", REPO / "materials", today=date(2027, 7, 1))
    expired = [str(w) for w in later.warnings if "skipped until fixed" in str(w)]
    assert expired and all("expired on 2027-0" in w for w in expired)
