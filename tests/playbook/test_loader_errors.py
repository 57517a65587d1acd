"""Broken playbooks: each mistake yields one precise ``file:line: key.path: message``."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from scrm.playbook import PlaybookError, load_playbook

from .factory import errors, load, make_playbook

CALENDAR = """\
    calendar: payroll-groups
    group_type: payroll
    steps:
      - {{day: 0, at: "10:00", send: group-hello}}
      - {{day: {day}, at: "{at}", send: {send}}}
    """


def calendar(day: object = 14, at: str = "12:10", send: str = "group-hello") -> str:
    return CALENDAR.format(day=day, at=at, send=send)


def test_base_playbook_is_valid(tmp_path: Path) -> None:
    pb = load(tmp_path)
    assert set(pb.materials) == {"hello", "group-hello"}
    assert pb.warnings == ()


def test_bad_time(tmp_path: Path) -> None:
    assert errors(tmp_path, sop__calendars__payroll_yaml=calendar(at="25:00")) == [
        "sop/calendars/payroll.yaml:5: steps[1].at: bad time '25:00': expected \"HH:MM\" between 00:00 and 23:59"
    ]


def test_unknown_material_suggests_the_close_one(tmp_path: Path) -> None:
    assert errors(tmp_path, sop__calendars__payroll_yaml=calendar(send="group-helo")) == [
        "sop/calendars/payroll.yaml:5: steps[1].send: unknown material 'group-helo'; did you mean 'group-hello'?"
    ]


def test_wrong_type(tmp_path: Path) -> None:
    assert errors(tmp_path, sop__calendars__payroll_yaml=calendar(day="abc")) == [
        "sop/calendars/payroll.yaml:5: steps[1].day: input should be a valid integer, "
        "unable to parse string as an integer (got 'abc')"
    ]


def test_missing_required_key_points_at_its_parent(tmp_path: Path) -> None:
    text = """\
        calendar: payroll-groups
        group_type: payroll
        steps:
          - {day: 0, send: group-hello}
        """
    assert errors(tmp_path, sop__calendars__payroll_yaml=text) == [
        "sop/calendars/payroll.yaml:4: steps[0].at: is required"
    ]


def test_unknown_key_names_the_allowed_ones(tmp_path: Path) -> None:
    text = """\
        path: payroll-wealth
        name: 代发+理财
        when: {all: [产品持有/代发]}
        steps:
          - {on: "payday + 1 workday", at: "10:00", sned: hello}
        """
    (line,) = errors(tmp_path, sop__paths__wealth_yaml=text)
    assert line.startswith("sop/paths/wealth.yaml:5: steps[0].sned: unknown key; did you mean 'send'? allowed: ")
    assert "allow_select" in line


def test_duplicate_key(tmp_path: Path) -> None:
    text = """\
        default_welcome: hello
        channels:
          payroll-card:
            name: 代发开卡
            managers: [zhangwei]
            name: 代发开卡二
        """
    assert errors(tmp_path, sop__channels_yaml=text) == [
        "sop/channels.yaml:6: channels.payroll-card.name: duplicate key 'name' (first defined on line 4)"
    ]


def test_yaml_syntax_error(tmp_path: Path) -> None:
    text = """\
        calendar: payroll-groups
        group_type: payroll
        steps:
          - {day: 0, at: "10:00", send: group-hello
          - {day: 1, at: "10:00", send: group-hello}
        """
    (line,) = errors(tmp_path, sop__calendars__payroll_yaml=text)
    assert line.startswith("sop/calendars/payroll.yaml:5: YAML syntax error: ")


def test_channel_key_too_long_for_wecom_state(tmp_path: Path) -> None:
    key = "payroll-onboarding-chengxi-2026"  # 31 characters
    text = f"""\
        default_welcome: hello
        channels:
          {key}:
            name: 代发开卡
            managers: [zhangwei]
        """
    assert errors(tmp_path, sop__channels_yaml=text) == [
        f"sop/channels.yaml:3: channels.{key}: bad key: channel key is 31 characters; WeCom's state allows at most 30"
    ]


EXPIRING = """\
    - id: hello
      type: text
      text: 您好，我是{manager.name}。
      approved: {by: 合规-王, at: 2026-01-05}
      valid_until: 2026-05-31
    - id: group-hello
      type: text
      channels: [group]
      text: 欢迎加入{group.name}
      approved: {by: 合规-王, at: 2026-01-05}
    """


def test_expired_material_in_use_is_a_warning_naming_every_step_it_skips(tmp_path: Path) -> None:
    # A compliance date must never stop the service: the load succeeds, the steps are skipped.
    pb = load(tmp_path, materials__base_yaml=EXPIRING)
    uses = "sop/channels.yaml:1 default_welcome; sop/paths/wealth.yaml:5 steps[0].send; " \
           "sop/reminders.yaml:7 reminders.maturity.script"
    assert [str(w) for w in pb.warnings] == [
        "materials/base.yaml:5: [0].valid_until: material 'hello' expired on 2026-05-31 (valid_until); "
        f"skipped until fixed: {uses}"
    ]
    assert pb.material_uses["hello"] == tuple(uses.split("; "))


def test_inactive_steps_may_use_drafts_but_not_unknown_ids(tmp_path: Path) -> None:
    drafts = """\
        - id: hello
          type: text
          text: 您好
          approved: {by: 合规-王, at: 2026-01-05}
        - id: group-hello
          type: text
          channels: [group]
          text: 草稿，尚未审批
        """
    text = """\
        calendar: payroll-groups
        group_type: payroll
        active: false
        steps:
          - {day: 0, at: "10:00", send: group-hello}
          - {day: 1, at: "10:00", send: nothing-here}
        """
    assert errors(tmp_path, materials__base_yaml=drafts, sop__calendars__payroll_yaml=text) == [
        "sop/calendars/payroll.yaml:6: steps[1].send: unknown material 'nothing-here'",
    ]


def test_unapproved_material_on_an_active_step(tmp_path: Path) -> None:
    text = """\
        - id: hello
          type: text
          text: 您好
        - id: group-hello
          type: text
          channels: [group]
          text: 欢迎
          approved: {by: 合规-王, at: 2026-01-05}
        """
    assert errors(tmp_path, materials__base_yaml=text) == []  # skipped, not refused
    warnings = [str(w) for w in load(tmp_path, materials__base_yaml=text).warnings]
    assert warnings == [
        "materials/base.yaml:1: [0].approved: material 'hello' is not approved (add approved: {by, at}); "
        "skipped until fixed: sop/channels.yaml:1 default_welcome; sop/paths/wealth.yaml:5 steps[0].send; "
        "sop/reminders.yaml:7 reminders.maturity.script"
    ]


def test_unknown_variable_is_reported_on_its_own_line(tmp_path: Path) -> None:
    text = """\
        - id: hello
          type: text
          text: |
            您好，
            我是{manager.nmae}。
          approved: {by: 合规-王, at: 2026-01-05}
        - id: group-hello
          type: text
          channels: [group]
          text: 欢迎加入{group.name}
          approved: {by: 合规-王, at: 2026-01-05}
        """
    (line,) = errors(tmp_path, materials__base_yaml=text)
    assert line.startswith("materials/base.yaml:5: [0].text: unknown variable {manager.nmae}; known: {customer.name}")


def test_group_material_cannot_name_a_customer(tmp_path: Path) -> None:
    text = """\
        - id: hello
          type: text
          text: 您好
          approved: {by: 合规-王, at: 2026-01-05}
        - id: group-hello
          type: text
          channels: [group]
          text: "{customer.name}，欢迎加入{group.name}"
          approved: {by: 合规-王, at: 2026-01-05}
        """
    (line,) = errors(tmp_path, materials__base_yaml=text)
    assert line.startswith("materials/base.yaml:8: [1].text: {customer.name} cannot be used in a group message")


def test_private_material_in_a_group_calendar(tmp_path: Path) -> None:
    assert errors(tmp_path, sop__calendars__payroll_yaml=calendar(send="hello")) == [
        "sop/calendars/payroll.yaml:5: steps[1].send: material 'hello' is for private, not group (see its channels:)"
    ]


def test_dunder_placeholder_is_an_error_not_code(tmp_path: Path) -> None:
    text = """\
        - id: hello
          type: text
          text: "{__class__}{customer.name.__class__}"
          approved: {by: 合规-王, at: 2026-01-05}
        - id: group-hello
          type: text
          channels: [group]
          text: 欢迎
          approved: {by: 合规-王, at: 2026-01-05}
        """
    found = errors(tmp_path, materials__base_yaml=text)
    assert len(found) == 2
    assert found[0].startswith("materials/base.yaml:3: [0].text: '{__class__}' is not a template variable")
    assert found[1].startswith("materials/base.yaml:3: [0].text: '{customer.name.__class__}' is not a template")


def test_step_inside_quiet_hours(tmp_path: Path) -> None:
    assert errors(tmp_path, sop__calendars__payroll_yaml=calendar(at="22:30")) == [
        "sop/calendars/payroll.yaml:5: steps[1].at: 22:30 is inside quiet hours 21:00-08:30 (sop/policy.yaml)"
    ]


def test_tags_must_be_declared_and_channels_may_not_set_crm_tags(tmp_path: Path) -> None:
    text = """\
        default_welcome: hello
        channels:
          payroll-card:
            name: 代发开卡
            managers: [zhangwei]
            tags: [渠道/代发开咔, 产品持有/代发]
        """
    assert errors(tmp_path, sop__channels_yaml=text) == [
        "sop/channels.yaml:6: channels.payroll-card.tags[0]: unknown tag '渠道/代发开咔': "
        "declare it in sop/tags.yaml; did you mean '渠道/代发开卡'?",
        "sop/channels.yaml:6: channels.payroll-card.tags[1]: tag '产品持有/代发' is owned by CRM sync, "
        "which would remove it; use a manager tag",
    ]


def test_unknown_group_type(tmp_path: Path) -> None:
    text = CALENDAR.format(day=1, at="10:00", send="group-hello").replace("group_type: payroll", "group_type: payrol")
    assert errors(tmp_path, sop__calendars__payroll_yaml=text) == [
        "sop/calendars/payroll.yaml:2: group_type: unknown group type 'payrol' (sop/groups.yaml); "
        "did you mean 'payroll'?"
    ]


def test_condition_is_parsed_and_type_checked_at_load(tmp_path: Path) -> None:
    text = """\
        path: payroll-wealth
        name: 代发+理财
        when: {all: [产品持有/代发]}
        steps:
          - on: "payday"
            at: "10:00"
            branches:
              - if: "crm.payday < '15'"
                send: hello
              - else: true
                send: hello
        """
    assert errors(tmp_path, sop__paths__wealth_yaml=text) == [
        "sop/paths/wealth.yaml:8: steps[0].branches[0].if: cannot compare a number with a string "
        "in \"crm.payday < '15'\""
    ]


def test_bad_date_expression(tmp_path: Path) -> None:
    text = """\
        path: payroll-wealth
        name: 代发+理财
        when: {all: [产品持有/代发]}
        steps:
          - {on: "paydya + 1 workday", at: "10:00", send: hello}
        """
    (line,) = errors(tmp_path, sop__paths__wealth_yaml=text)
    assert line.startswith("sop/paths/wealth.yaml:5: steps[0].on: unknown date 'paydya'")


def test_aliases_are_refused(tmp_path: Path) -> None:
    text = """\
        calendar: payroll-groups
        group_type: payroll
        steps:
          - &first {day: 0, at: "10:00", send: group-hello}
          - *first
        """
    assert errors(tmp_path, sop__calendars__payroll_yaml=text) == [
        "sop/calendars/payroll.yaml:5: anchors and aliases (&name / *name) are not supported; repeat the value",
    ]


def test_all_errors_across_files_in_one_run(tmp_path: Path) -> None:
    found = errors(
        tmp_path,
        sop__calendars__payroll_yaml=calendar(at="25:00"),
        sop__paths__wealth_yaml="path: p\nname: x\nwhen: {}\nsteps:\n  - {on: payday, at: '9', send: hello}\n",
        sop__reminders_yaml="reminders:\n  m: {on: maturity, name: 到期, card: 到期了}\n",
    )
    assert found == [
        "sop/calendars/payroll.yaml:5: steps[1].at: bad time '25:00': expected \"HH:MM\" between 00:00 and 23:59",
        "sop/paths/wealth.yaml:5: steps[0].at: bad time '9': expected \"HH:MM\" between 00:00 and 23:59",
        "sop/reminders.yaml:2: reminders.m: a maturity reminder needs days_before:",
    ]


def test_missing_policy_file(tmp_path: Path) -> None:
    assert errors(tmp_path, sop__policy_yaml=None)[0] == "sop/policy.yaml: file not found"


def test_duplicate_material_ids_across_files(tmp_path: Path) -> None:
    extra = """\
        - id: hello
          type: text
          text: 另一个
        """
    assert errors(tmp_path, materials__more_yaml=extra) == [
        "materials/more.yaml:1: [0].id: duplicate material id 'hello' (also materials/base.yaml:1)"
    ]


def test_expiring_material_is_a_warning(tmp_path: Path) -> None:
    pb = load(tmp_path, today=date(2026, 5, 20), materials__base_yaml=EXPIRING)
    assert [str(w) for w in pb.warnings] == [
        "materials/base.yaml:5: [0].valid_until: material 'hello' expires on 2026-05-31 (in 11 days); then skipped: "
        "sop/channels.yaml:1 default_welcome; sop/paths/wealth.yaml:5 steps[0].send; "
        "sop/reminders.yaml:7 reminders.maturity.script"
    ]


def test_error_object_carries_issues(tmp_path: Path) -> None:
    sop, materials = make_playbook(tmp_path, sop__calendars__payroll_yaml=calendar(at="25:00"))
    with pytest.raises(PlaybookError) as info:
        load_playbook(sop, materials, today=date(2026, 6, 1))
    (issue,) = info.value.errors
    assert (issue.file, issue.line, issue.key_path) == ("sop/calendars/payroll.yaml", 5, "steps[1].at")
    assert str(info.value) == str(issue)


def test_unknown_files_are_warned_about(tmp_path: Path) -> None:
    pb = load(tmp_path, sop__calender_yaml="x: 1\n")
    assert [str(w) for w in pb.warnings] == ["sop/calender.yaml: not part of the playbook layout; ignored"]


def test_payday_needs_a_default_on_the_group_type(tmp_path: Path) -> None:
    groups = """\
        group_types:
          payroll:
            name: 代发群
            classify: {name: 代发}
        """
    assert errors(tmp_path, sop__groups_yaml=groups) == [
        "sop/calendars/payroll.yaml:7: recurring[0].on: group type 'payroll' has no payday: default"
    ]


def test_cron_inside_quiet_hours(tmp_path: Path) -> None:
    text = """\
        calendar: payroll-groups
        group_type: payroll
        recurring:
          - {cron: "30 22 * * 5", send: group-hello}
        """
    assert errors(tmp_path, sop__calendars__payroll_yaml=text) == [
        "sop/calendars/payroll.yaml:4: recurring[0].cron: 22:30 is inside quiet hours 21:00-08:30 (sop/policy.yaml)"
    ]


def test_step_after_a_flash_groups_lifetime_is_a_warning(tmp_path: Path) -> None:
    groups = """\
        group_types:
          payroll:
            name: 快闪
            classify: {name: 快闪}
            lifetime_days: 7
            payday: 10
        """
    pb = load(tmp_path, sop__groups_yaml=groups, sop__calendars__payroll_yaml=calendar(day=9))
    assert [str(w) for w in pb.warnings] == [
        "sop/calendars/payroll.yaml:5: steps[1].day: day 9 is after the group's lifetime (7 days)"
    ]


def test_bad_monthly_date_is_reported_at_on(tmp_path: Path) -> None:
    text = """\
        calendar: payroll-groups
        group_type: payroll
        recurring:
          - {every: month, on: "birthday", at: "10:00", send: group-hello}
          - {every: week, on: "wensday", at: "10:00", send: group-hello}
        """
    assert errors(tmp_path, sop__calendars__payroll_yaml=text) == [
        "sop/calendars/payroll.yaml:4: recurring[0].on: a group calendar knows no 'birthday'; "
        "use day N, first/last workday or payday",
        "sop/calendars/payroll.yaml:5: recurring[1].on: unknown weekday 'wensday': use mon..sun or 周一..周日, "
        'e.g. "wed"',
    ]


def test_quick_replies_cannot_be_sent_by_steps(tmp_path: Path) -> None:
    extra = """\
        - id: qr
          type: quick_reply
          quick_reply: {question: 年费？, answer: 免年费。}
          approved: {by: 合规-王, at: 2026-01-05}
        """
    text = """\
        path: payroll-wealth
        name: 代发+理财
        when: {}
        steps:
          - {on: "added_at + 1 day", at: "10:00", send: qr}
        """
    assert errors(tmp_path, materials__more_yaml=extra, sop__paths__wealth_yaml=text) == [
        "sop/paths/wealth.yaml:5: steps[0].send: material 'qr' is a quick reply for the manager's sidebar; "
        "steps cannot send it"
    ]


def test_mini_program_cover_file_must_exist(tmp_path: Path) -> None:
    text = """\
        - id: hello
          type: miniprogram
          text: 您好
          miniprogram: {title: 开卡礼, appid: wx0123456789abcdef, page: pages/a.html, cover: covers/missing.png}
          approved: {by: 合规-王, at: 2026-01-05}
        - id: group-hello
          type: text
          channels: [group]
          text: 欢迎
          approved: {by: 合规-王, at: 2026-01-05}
        """
    assert errors(tmp_path, materials__base_yaml=text) == [
        "materials/base.yaml:4: [0].miniprogram.cover: no file 'covers/missing.png' under materials/"
    ]


# --- impossible dates: YAML reads them as text; the model says where and why ----------------------

HOLIDAYS_FEB_30 = """\
    years:
      2026:
        status: official
        off:
          春节: [2026-02-15, 2026-02-30]
        work: [2026-02-14, 2026-02-29]
    """


def test_impossible_holiday_dates_are_file_line_errors(tmp_path: Path) -> None:
    assert errors(tmp_path, sop__holidays_yaml=HOLIDAYS_FEB_30) == [
        "sop/holidays.yaml:5: years.2026.off.春节[1]: bad date '2026-02-30': day is out of range for month",
        "sop/holidays.yaml:6: years.2026.work[1]: bad date '2026-02-29': day is out of range for month",
    ]


def test_impossible_material_dates_are_file_line_errors(tmp_path: Path) -> None:
    text = """\
        - id: hello
          type: text
          text: 您好
          approved: {by: 合规-王, at: 2026-13-05}
          valid_until: 2027-06-31
        - id: group-hello
          type: text
          channels: [group]
          text: 欢迎
          approved: {by: 合规-王, at: 2026-01-05}
        """
    assert errors(tmp_path, materials__base_yaml=text) == [
        "materials/base.yaml:4: [0].approved.at: bad date '2026-13-05': month must be in 1..12",
        "materials/base.yaml:5: [0].valid_until: bad date '2027-06-31': day is out of range for month",
    ]


def test_sop_validate_reports_an_impossible_date_without_a_traceback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    from scrm.cli import main

    sop, materials = make_playbook(tmp_path, sop__holidays_yaml=HOLIDAYS_FEB_30)
    monkeypatch.setenv("SCRM_PLAYBOOK__SOP_DIR", str(sop))
    monkeypatch.setenv("SCRM_PLAYBOOK__MATERIALS_DIR", str(materials))
    code = main(["sop", "validate"])
    out, err = capsys.readouterr()
    assert code == 2 and "Traceback" not in err
    assert [line for line in out.splitlines() if not line.startswith("warning: ")] == [
        "sop/holidays.yaml:5: years.2026.off.春节[1]: bad date '2026-02-30': day is out of range for month",
        "sop/holidays.yaml:6: years.2026.work[1]: bad date '2026-02-29': day is out of range for month",
    ]


def test_unknown_policy_time_zone_is_a_file_line_error(tmp_path: Path) -> None:
    policy = """\
        quiet_hours: "21:00-08:30"
        timezone: Asia/Shanghia
        opt_out_tag: 偏好/免打扰
        risk_disclosure: 理财非存款，产品有风险，投资须谨慎。
        """
    assert errors(tmp_path, sop__policy_yaml=policy) == [
        "sop/policy.yaml:2: timezone: unknown time zone 'Asia/Shanghia', e.g. Asia/Shanghai"
    ]
