"""The condition language: parsed and type-checked once, evaluated without eval()."""

from __future__ import annotations

import re

import pytest

from scrm.playbook import ExprError, MissingValue, parse_condition


def test_branch_condition() -> None:
    cond = parse_condition("crm.payday < crm.repayment_day")
    assert cond.evaluate({"crm.payday": 10, "crm.repayment_day": "15"}, [])
    assert not cond.evaluate({"crm.payday": 20, "crm.repayment_day": 15}, [])


def test_tags_wan_and_precedence() -> None:
    cond = parse_condition("crm.aum >= 50万 and not has '风险评估/未评估' or crm.tier == 'P'")
    assert cond.tags == {"风险评估/未评估"}
    assert cond.evaluate({"crm.aum": 500_000, "crm.tier": "V3"}, [])
    assert not cond.evaluate({"crm.aum": 500_000, "crm.tier": "V3"}, ["风险评估/未评估"])
    assert cond.evaluate({"crm.aum": 1, "crm.tier": "P"}, ["风险评估/未评估"])


def test_missing_values_are_not_guessed() -> None:
    with pytest.raises(MissingValue) as info:
        parse_condition("crm.payday < crm.repayment_day").evaluate({"crm.payday": 10}, [])
    assert info.value.name == "crm.repayment_day"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("crm.aum > 'x'", "cannot compare a number with a string"),
        ("crm.tier < 'V3'", "text can only be compared with == or !="),
        ("crm.salary > 1", "unknown field 'crm.salary'"),
        ("1 < 2", "compares two constants"),
        ("__import__('os') == 1", "expected a crm.* field, a number or a 'quoted' text at column 1"),
        ("crm.aum.__class__ == 1", "unknown field 'crm.aum.__class__'"),
        ("crm.aum > 1 crm.age > 2", "join conditions with and/or"),
        ("(crm.aum > 1", "ends too early"),
    ],
)
def test_errors(text: str, message: str) -> None:
    with pytest.raises(ExprError, match=re.escape(message)):
        parse_condition(text)
