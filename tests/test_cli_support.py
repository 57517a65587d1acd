"""scrm/cli_support.py's shared reporting of bad input."""

from __future__ import annotations

import pytest

from scrm.cli_support import report_problems


def test_report_problems_prints_each_then_one_summary_line(capsys: pytest.CaptureFixture[str]) -> None:
    problems = ["sop/referral.yaml:3: reward: must be a mapping", "sop/referral.yaml:9: cap: not a number"]
    assert report_problems(problems, "the referral rules") == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == [*problems, "scrm: 2 problem(s) in the referral rules"]


def test_report_problems_says_what_was_not_done(capsys: pytest.CaptureFixture[str]) -> None:
    assert report_problems(["hr.csv:4: userid: unknown member 'x'"], "hr.csv", outcome="nothing imported") == 2
    assert capsys.readouterr().err.splitlines()[-1] == "scrm: nothing imported: 1 problem(s) in hr.csv"
