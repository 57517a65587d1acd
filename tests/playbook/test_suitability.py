"""Suitability at validate time: a product material (``risk_level``) goes only where each customer
can be checked; in a group post, a group's task card or a welcome it may not exceed the compliance
team's ``group_max_risk`` (``sop/compliance/suitability.yaml``), and ``scrm sop validate`` says
so at the step's line. Also the pure rules: levels, expiry, consent."""

from __future__ import annotations

import textwrap
from datetime import timedelta
from pathlib import Path

import pytest

from scrm.playbook import Material
from scrm.playbook.suitability import (
    DEFAULT_RULES,
    consent_problem,
    customer_level,
    suitability_problem,
)
from tests.playbook.factory import BASE, TODAY, errors, load

PRODUCTS = textwrap.dedent(BASE["materials/base.yaml"]) + """\
- id: fund-r3
  type: text
  channels: [group, private]
  text: 基金R3
  risk_level: R3
  product_category: wealth
  approved: {by: 合规-王, at: 2026-01-05}
- id: deposit-r1
  type: text
  channels: [group, private]
  text: 存单R1
  risk_level: R1
  product_category: wealth
  approved: {by: 合规-王, at: 2026-01-05}
"""
CALENDAR = """\
calendar: payroll-groups
group_type: payroll
steps:
  - {day: 0, at: "10:00", send: deposit-r1}
  - {day: 14, at: "12:10", send: fund-r3}
  - {day: 15, at: "12:10", send: fund-r3, to: members}
"""
CEILING_R1 = "group_max_risk: R1\n"


def _line(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def test_a_product_above_the_group_ceiling_in_a_group_post_is_an_error_at_its_step(tmp_path: Path) -> None:
    found = errors(tmp_path, materials__base_yaml=PRODUCTS, sop__calendars__payroll_yaml=CALENDAR,
                   sop__compliance__suitability_yaml=CEILING_R1)
    line = _line(CALENDAR, "day: 14")
    assert len(found) == 1, found
    assert found[0].startswith(f"sop/calendars/payroll.yaml:{line}: steps[1].send: suitability: R3 material "
                               "'fund-r3' cannot be checked per customer here (group_max_risk is R1)"), found
    # The same material 1:1 to the group's members (to: members, line 5) is checked per customer: fine.
    assert not any("steps[2]" in e for e in found)


def test_without_a_ceiling_no_product_goes_to_groups_and_with_a_higher_one_it_may(tmp_path: Path) -> None:
    found = errors(tmp_path / "a", materials__base_yaml=PRODUCTS, sop__calendars__payroll_yaml=CALENDAR)
    assert [e.split(": ")[1] for e in found] == ["steps[0].send", "steps[1].send"]
    assert all("group_max_risk is not set" in e for e in found)
    pb = load(tmp_path / "b", materials__base_yaml=PRODUCTS, sop__calendars__payroll_yaml=CALENDAR,
              sop__compliance__suitability_yaml="group_max_risk: R3\n")
    assert pb.suitability.group_max_risk == "R3"


def test_a_product_welcome_is_an_error(tmp_path: Path) -> None:
    channels = textwrap.dedent(BASE["sop/channels.yaml"]).replace("default_welcome: hello", "default_welcome: fund-r3")
    found = errors(tmp_path, materials__base_yaml=PRODUCTS, sop__channels_yaml=channels,
                   sop__compliance__suitability_yaml=CEILING_R1)
    assert len(found) == 1 and found[0].startswith("sop/channels.yaml:1: default_welcome: suitability: R3"), found


def test_an_unknown_consent_category_and_a_bad_rules_file_are_errors(tmp_path: Path) -> None:
    materials = PRODUCTS.replace("product_category: wealth\n  approved", "product_category: crypto\n  approved", 1)
    rules = "group_max_risk: R9\n"
    found = errors(tmp_path, materials__base_yaml=materials, sop__compliance__suitability_yaml=rules)
    line = _line(materials, "crypto")
    assert f"materials/base.yaml:{line}: [2].product_category: unknown category 'crypto'; " \
           "sop/compliance/suitability.yaml lists: wealth, loans, cards, insurance, events" in found
    assert any(e.startswith("sop/compliance/suitability.yaml:1: group_max_risk: ") for e in found), found


def test_the_compliance_folder_is_part_of_the_layout(tmp_path: Path) -> None:
    pb = load(tmp_path / "a", sop__compliance__suitability_yaml=CEILING_R1)
    assert not [w for w in pb.warnings if "compliance" in w.file], pb.warnings
    assert pb.suitability.group_max_risk == "R1"
    assert load(tmp_path / "b").suitability == DEFAULT_RULES  # no suitability.yaml: the strict defaults


FUND = Material.model_validate({"id": "fund", "type": "text", "text": "x", "risk_level": "R3",
                                "product_category": "wealth"})


@pytest.mark.parametrize(("attributes", "problem"), [
    ({"risk_level": "C3", "risk_expiry": TODAY.isoformat()}, None),  # valid through its expiry day
    ({"risk_level": 5, "risk_expiry": "2027-01-01"}, None),
    ({"risk_level": "c4", "risk_expiry": "2027-01-01T00:00:00+08:00"}, None),
    ({"risk_level": "C2", "risk_expiry": "2027-01-01"}, "suitability: R3 > C2"),
    ({"risk_level": "C3", "risk_expiry": (TODAY - timedelta(days=1)).isoformat()},
     f"suitability: risk assessment C3 expired on {TODAY - timedelta(days=1)}"),
    ({"risk_level": "C3"}, "suitability: risk assessment C3 has no expiry date"),
    ({"risk_level": "high", "risk_expiry": "2027-01-01"}, "suitability: no risk assessment"),
    ({}, "suitability: no risk assessment"),
])
def test_levels_and_expiry(attributes: dict[str, object], problem: str | None) -> None:
    got = suitability_problem(FUND, attributes, TODAY, DEFAULT_RULES)
    assert (got is None) if problem is None else (got is not None and got.startswith(problem)), got


def test_level_parsing() -> None:
    assert [customer_level(v) for v in ("C1", "c5", 3, "4", " C2 ", "C6", "R3", True, None)] == [
        1, 5, 3, 4, 2, None, None, None, None]


def test_consent_of_a_category() -> None:
    assert consent_problem(FUND, {"wealth": False}, DEFAULT_RULES) == "consent: wealth withdrawn (material 'fund')"
    assert consent_problem(FUND, {"wealth": True}, DEFAULT_RULES) is None
    assert consent_problem(FUND, {}, DEFAULT_RULES) is None  # never asked: consent_default (true)
    assert consent_problem(FUND, {}, DEFAULT_RULES.model_copy(update={"consent_default": False})) is not None
