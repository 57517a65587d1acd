"""Planning: concrete send dates for a group or a customer, with holidays applied."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from scrm.playbook import calendar_occurrences, format_plan, path_occurrences, plan_playbook

from .factory import load

D = date.fromisoformat

CALENDAR = """\
    calendar: payroll-groups
    group_type: payroll
    steps:
      - {day: 0, at: "10:00", send: group-hello}
      - {day: 11, at: "12:10", send: group-hello}
    recurring:
      - {every: month, on: "payday + 1 workday", at: "12:10", send: group-hello}
      - {cron: "0 10 1 * *", send: group-hello}
    """


def test_group_calendar_dates_around_national_day(tmp_path: Path) -> None:
    pb = load(tmp_path, sop__calendars__payroll_yaml=CALENDAR)
    cal = pb.calendars["payroll-groups"]
    occs = calendar_occurrences(pb, cal, D("2026-09-23"), D("2026-09-23"), D("2026-11-05"), payday=30)
    got = [(o.at.strftime("%m-%d %H:%M"), o.step, o.occurrence, o.note) for o in occs]
    assert got == [
        ("09-23 10:00", "d0-1000-group-hello", "once", ""),
        ("10-08 10:00", "cron-0_10_1_*_*-group-hello", "2026-10-01", "moved from 10-01 (国庆节)"),
        ("10-08 12:10", "d11-1210-group-hello", "once", "moved from 10-04 (国庆节)"),
        ("10-08 12:10", "month-payday+1workday-1210-group-hello", "2026-09", ""),  # payday 09-30
        ("11-02 10:00", "cron-0_10_1_*_*-group-hello", "2026-11-01", "moved from 11-01 (weekend)"),
        ("11-02 12:10", "month-payday+1workday-1210-group-hello", "2026-10", ""),  # payday 10-30 (Fri)
    ]
    assert all(o.at.utcoffset() is not None and o.at.utcoffset().total_seconds() == 8 * 3600 for o in occs)


def test_path_dates_for_one_customer(tmp_path: Path) -> None:
    pb = load(tmp_path)
    path = pb.paths["payroll-wealth"]
    occs = path_occurrences(pb, path, {"payday": 10}, D("2026-09-01"), D("2026-11-30"))
    assert [(f"{o.at:%m-%d}", o.occurrence, o.to) for o in occs] == [
        ("09-11", "2026-09", "customer"),
        ("10-12", "2026-10", "customer"),  # 10-10 is a make-up Saturday: payday itself is a workday
        ("11-11", "2026-11", "customer"),
    ]


def test_plan_preview_reads_like_a_calendar(tmp_path: Path) -> None:
    pb = load(tmp_path)
    lines = format_plan(plan_playbook(pb, D("2026-11-23"), days=20))
    assert lines[0] == "2026-11-23 周一 10:00  calendar:payroll-groups  send group-hello → group"
    assert "2026-12-11 周五 10:00  path:payroll-wealth  send hello → customer" in lines
