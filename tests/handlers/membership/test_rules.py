"""sop/membership.yaml: the shipped file loads; a broken one is every problem as
``file:line: key: message`` and exit 2 from ``scrm membership check``, never a traceback."""

from __future__ import annotations

import shutil
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from handlers.crm.api import EVENT_KINDS
from handlers.membership.rules import Expiry, Membership, load_membership
from scrm.cli import main
from scrm.playbook.issues import PlaybookError

REPO = Path(__file__).resolve().parents[3]
SH = ZoneInfo("Asia/Shanghai")


def use_sop(monkeypatch: pytest.MonkeyPatch, sop: Path) -> None:
    monkeypatch.setenv("SCRM_PLAYBOOK__SOP_DIR", str(sop))
    monkeypatch.setenv("SCRM_PLAYBOOK__MATERIALS_DIR", str(REPO / "materials"))


def test_the_shipped_file_loads_and_check_prints_it(monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    rules = load_membership(REPO / "sop", EVENT_KINDS)
    assert [lv.name for lv in rules.levels] == ["new", "ordinary", "core", "seed"]  # the pyramid
    assert rules.behaviour_on("crm.purchase.wealth") is not None
    use_sop(monkeypatch, REPO / "sop")
    assert main(["membership", "check"]) == 0
    out = capsys.readouterr().out
    assert "level seed (种子会员) from 3000, keeps at 2000" in out


def test_a_broken_file_is_file_line_errors_and_exit_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    sop = tmp_path / "sop"
    shutil.copytree(REPO / "sop", sop)
    (sop / "membership.yaml").write_text(
        "behaviours:\n"
        "  buy: {on: crm.purchase.welth, points: 5}\n"        # line 2: unknown CRM kind
        "  read: {on: radar.open, points: -1, growth: 2}\n"    # line 3: negative
        "  again: {on: radar.open, growth: 1, daily_cap: 5, monthly_cap: 2}\n"  # line 4: twice; caps
        "points:\n"
        "  expire: {after_days: 30, year_end_after: 1}\n"      # line 6: both rules
        "levels:\n"
        "  list:\n"
        "    - {name: base, growth: 10}\n"                     # line 9: lowest must start at 0
        "    - {name: gold, growth: 5, keep: 8}\n"             # line 10: not ascending; keep above growth
        "review: {every: weekly}\n",                           # line 11: unknown period
        encoding="utf-8")
    use_sop(monkeypatch, sop)
    assert main(["membership", "check"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert any(e.startswith("sop/membership.yaml:2: behaviours.buy.on: unknown behaviour source "
                            "'crm.purchase.welth'") for e in err), err
    assert "sop/membership.yaml:3: behaviours.read.points: must be a whole number 0..1000000, got -1" in err
    assert any(e.startswith("sop/membership.yaml:4: behaviours.again.on: 'radar.open' already earns") for e in err)
    assert any(e.startswith("sop/membership.yaml:4: behaviours.again.monthly_cap: is below daily_cap") for e in err)
    assert any(e.startswith("sop/membership.yaml:6: points.expire: give exactly one of") for e in err)
    assert any(e.startswith("sop/membership.yaml:9: levels.list[0].growth: the lowest level must start from 0")
               for e in err)
    assert any(e.startswith("sop/membership.yaml:10: levels.list[1].growth: must be above the previous")
               for e in err)
    assert "sop/membership.yaml:10: levels.list[1].keep: must not be above growth (5)" in err
    assert any(e.startswith("sop/membership.yaml:11: review.every: must be one of") for e in err)
    assert err[-1] == "scrm: 9 problem(s) in the membership rules"
    # The report refuses the same way (it needs the levels to name).
    assert main(["membership", "report"]) == 2


def test_expiry_rules_name_the_moment_points_lapse() -> None:
    earned = datetime(2026, 12, 31, 23, 30, tzinfo=SH)  # still 2026 in Shanghai, 2026-12-31 15:30 UTC
    assert Expiry(year_end_after=1).expires_at(earned, SH) == datetime(2028, 1, 1, tzinfo=SH).astimezone(UTC)
    assert Expiry(year_end_after=0).expires_at(earned, SH) == datetime(2027, 1, 1, tzinfo=SH).astimezone(UTC)
    assert Expiry(after_days=30).expires_at(earned, SH) == datetime(2027, 1, 30, 23, 30, tzinfo=SH)
    assert Expiry().expires_at(earned, SH) is None


@pytest.mark.parametrize(("months", "day", "review"), [
    (3, date(2027, 5, 17), date(2027, 4, 1)), (3, date(2027, 4, 1), date(2027, 4, 1)),
    (3, date(2027, 3, 31), date(2027, 1, 1)), (1, date(2027, 3, 31), date(2027, 3, 1)),
    (6, date(2027, 12, 2), date(2027, 7, 1)), (12, date(2027, 6, 30), date(2027, 1, 1)),
])
def test_the_review_a_night_owes_is_the_latest_period_start(months: int, day: date, review: date) -> None:
    assert Membership(review_months=months).review_day(day) == review


def test_quiz_problems_name_their_line(tmp_path: Path) -> None:
    sop = tmp_path / "sop"
    sop.mkdir()
    (sop / "membership.yaml").write_text(
        "behaviours:\n"
        "  quiz: {on: quiz, points: 5}\n"
        "levels: {list: [{name: base, growth: 0}]}\n"
        "quizzes:\n"
        "  q1: {question: 哪个对？, choices: [甲, 乙], answer: 丙}\n"       # line 5: not a choice
        "  q2: {question: 只有一个, choices: [甲], answer: 甲}\n",          # line 6: one choice
        encoding="utf-8")
    with pytest.raises(PlaybookError) as caught:
        load_membership(sop, EVENT_KINDS)
    assert [str(e) for e in caught.value.errors] == [
        "sop/membership.yaml:5: quizzes.q1.answer: must be one of the choices, got '丙'",
        "sop/membership.yaml:6: quizzes.q2.choices: must list at least two choices"]
    shipped = load_membership(REPO / "sop", EVENT_KINDS)
    assert {q.name for q in shipped.quizzes} == {"deposit_insurance", "fund_risk"}
    assert all(q.answer in q.choices for q in shipped.quizzes)
