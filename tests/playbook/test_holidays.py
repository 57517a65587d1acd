"""Holiday data, workday arithmetic and date expressions over it."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from scrm.playbook import WorkCalendar, parse_date_expr
from scrm.playbook.holidays import load_holidays
from scrm.playbook.yamlsrc import read_yaml

from .factory import REPO

D = date.fromisoformat


@pytest.fixture(scope="module")
def cal() -> WorkCalendar:
    source, issues = read_yaml(REPO / "sop" / "holidays.yaml", "sop/holidays.yaml")
    assert source is not None and not issues
    calendar, problems = load_holidays(source, date(2026, 6, 1))
    assert problems == []
    return calendar


def test_2026_national_day(cal: WorkCalendar) -> None:
    for day in range(1, 8):
        assert not cal.is_workday(date(2026, 10, day))
        assert cal.holiday_name(date(2026, 10, day)) == "国庆节"
    assert cal.is_workday(D("2026-10-08"))
    assert cal.is_workday(D("2026-09-20"))  # Sunday, 调休上班
    assert cal.is_workday(D("2026-10-10"))  # Saturday, 调休上班
    assert not cal.is_workday(D("2026-10-11"))  # ordinary Sunday


def test_2026_spring_festival_and_its_make_up_days(cal: WorkCalendar) -> None:
    assert all(not cal.is_workday(date(2026, 2, d)) for d in range(15, 24))
    assert cal.is_workday(D("2026-02-14"))  # Saturday before
    assert cal.is_workday(D("2026-02-28"))  # Saturday after
    assert cal.is_workday(D("2026-02-24"))


def test_2025_spring_festival(cal: WorkCalendar) -> None:
    assert cal.is_workday(D("2025-01-26")) and cal.is_workday(D("2025-02-08"))
    assert not cal.is_workday(D("2025-01-28")) and not cal.is_workday(D("2025-02-04"))


def test_add_workdays(cal: WorkCalendar) -> None:
    assert cal.add_workdays(D("2026-09-30"), 1) == D("2026-10-08")
    assert cal.add_workdays(D("2026-10-09"), 1) == D("2026-10-10")  # the make-up Saturday counts
    assert cal.add_workdays(D("2026-02-13"), 1) == D("2026-02-14")
    assert cal.add_workdays(D("2026-02-14"), 1) == D("2026-02-24")
    assert cal.add_workdays(D("2026-10-08"), -1) == D("2026-09-30")
    assert cal.add_workdays(D("2026-10-03"), 0) == D("2026-10-08")  # zero rolls forward
    assert cal.add_workdays(D("2026-11-23"), 0) == D("2026-11-23")
    assert cal.add_workdays(D("2026-11-20"), 5) == D("2026-11-27")


def test_date_expressions(cal: WorkCalendar) -> None:
    october = D("2026-10-15")
    payday = {"payday": D("2026-09-30")}
    assert parse_date_expr("payday + 1 workday").resolve(october, payday, cal) == D("2026-10-08")
    assert parse_date_expr("payday + 2 days").resolve(october, payday, cal) == D("2026-10-02")
    assert parse_date_expr("first workday").resolve(october, {}, cal) == D("2026-10-08")
    assert parse_date_expr("last workday").resolve(D("2026-02-01"), {}, cal) == D("2026-02-28")
    assert parse_date_expr("day 31").resolve(D("2026-02-01"), {}, cal) == D("2026-02-28")
    assert parse_date_expr("last day - 1 workday").resolve(D("2026-05-01"), {}, cal) == D("2026-05-29")


def test_uncovered_years_fall_back_to_weekdays(cal: WorkCalendar) -> None:
    assert cal.coverage(2026) == "official"
    assert cal.coverage(2027) == "provisional"
    assert cal.coverage(2031) is None
    assert cal.is_workday(D("2031-10-01")) and not cal.is_workday(D("2031-10-04"))


def test_bad_holiday_data_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "holidays.yaml"
    path.write_text(
        "years:\n"
        "  2026:\n"
        "    status: official\n"
        "    off:\n"
        "      国庆节: [2026-10-07, 2026-10-01]\n"
        "    work: [2026-10-09]\n",
        encoding="utf-8",
    )
    source, _ = read_yaml(path, "sop/holidays.yaml")
    assert source is not None
    _, issues = load_holidays(source, date(2026, 11, 23))
    assert [str(i) for i in issues] == [
        "sop/holidays.yaml:5: years.2026.off.国庆节: range ends (2026-10-01) before it starts (2026-10-07)",
        "sop/holidays.yaml:6: years.2026.work[0]: 2026-10-09 is a weekday; make-up workdays are weekend days",
        "sop/holidays.yaml:1: years: 2027 has no data; enter the State Council schedule when it is published",
    ]
    assert issues[-1].severity == "warning"
