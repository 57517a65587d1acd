"""A step's ``goal:`` (what the SOP effect page counts as converted): read from the YAML, and
every broken value one ``file:line: key.path: message`` naming the key."""

from __future__ import annotations

from pathlib import Path
from typing import get_args

from handlers.crm.records import EVENT_KINDS
from scrm.playbook import Goal
from scrm.playbook.flows import CrmEventKind

from .factory import errors, load

PATH = """\
    path: payroll-wealth
    name: 代发+理财
    when: {{all: [产品持有/代发, 产品持有/理财]}}
    steps:
      - on: "payday + 1 workday"
        at: "10:00"
        send: hello
        goal: {goal}
    """

CALENDAR = """\
    calendar: payroll-groups
    group_type: payroll
    steps:
      - {{day: 0, at: "10:00", send: group-hello}}
      - {{day: 45, at: "12:10", send: hello, to: {to}, goal: {{event: tier_up, within_days: 30}}}}
    """


def test_a_path_step_and_a_members_entry_carry_their_goal(tmp_path: Path) -> None:
    pb = load(tmp_path, sop__paths__wealth_yaml=PATH.format(goal="{event: tier_up, within_days: 14}"),
              sop__calendars__payroll_yaml=CALENDAR.format(to="members"))
    assert pb.paths["payroll-wealth"].steps[0].goal == Goal(event="tier_up", within_days=14)
    steps = pb.calendars["payroll-groups"].steps
    assert steps[0].goal is None
    assert steps[1].goal == Goal(event="tier_up", within_days=30)


def test_an_unknown_event_kind_names_the_kinds_the_crm_sends(tmp_path: Path) -> None:
    [line] = errors(tmp_path, sop__paths__wealth_yaml=PATH.format(goal="{event: wealth_purchase, within_days: 14}"))
    assert line.startswith("sop/paths/wealth.yaml:8: steps[0].goal.event: input should be ")
    assert "'tier_up'" in line and "(got 'wealth_purchase')" in line


def test_a_window_must_be_1_to_365_days(tmp_path: Path) -> None:
    assert errors(tmp_path, sop__paths__wealth_yaml=PATH.format(goal="{event: tier_up, within_days: 0}")) == [
        "sop/paths/wealth.yaml:8: steps[0].goal.within_days: input should be greater than or equal to 1 (got 0)"]
    assert errors(tmp_path, sop__paths__wealth_yaml=PATH.format(goal="{event: tier_up, within_days: 2周}")) == [
        "sop/paths/wealth.yaml:8: steps[0].goal.within_days: input should be a valid integer, "
        "unable to parse string as an integer (got '2周')"]


def test_a_goal_needs_both_keys_and_no_others(tmp_path: Path) -> None:
    assert errors(tmp_path, sop__paths__wealth_yaml=PATH.format(goal="{event: tier_up}")) == [
        "sop/paths/wealth.yaml:8: steps[0].goal.within_days: is required"]
    assert errors(tmp_path, sop__paths__wealth_yaml=PATH.format(goal="{event: tier_up, within_day: 3}")) == [
        "sop/paths/wealth.yaml:8: steps[0].goal.within_day: unknown key; did you mean 'within_days'? "
        "allowed: event, within_days",
        "sop/paths/wealth.yaml:8: steps[0].goal.within_days: is required"]
    assert errors(tmp_path, sop__paths__wealth_yaml=PATH.format(goal="tier_up")) == [
        "sop/paths/wealth.yaml:8: steps[0].goal: expected a mapping (key: value lines), got 'tier_up'"]


def test_a_post_in_the_chat_has_no_goal(tmp_path: Path) -> None:
    assert errors(tmp_path, sop__calendars__payroll_yaml=CALENDAR.format(to="group")) == [
        "sop/calendars/payroll.yaml:5: steps[1].goal: a goal counts customers reached 1:1, so it needs "
        "to: members (and send:)"]


def test_the_goal_kinds_are_the_kinds_the_crm_stores() -> None:
    assert set(get_args(CrmEventKind)) == set(EVENT_KINDS)
