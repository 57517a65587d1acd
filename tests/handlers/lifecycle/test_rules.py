"""The files ops admins own: the shipped ones load; a broken one is every problem as
``file:line: key: message`` and exit 2 from ``scrm segments check``, never a traceback."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from handlers.lifecycle.rules import check, load_lifecycle, load_segmentation
from scrm.cli import main

REPO = Path(__file__).resolve().parents[3]


def use_sop(monkeypatch: pytest.MonkeyPatch, sop: Path) -> None:
    monkeypatch.setenv("SCRM_PLAYBOOK__SOP_DIR", str(sop))
    monkeypatch.setenv("SCRM_PLAYBOOK__MATERIALS_DIR", str(REPO / "materials"))


def test_the_shipped_files_load_and_check_prints_them(monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    seg, lc = load_segmentation(REPO / "sop"), load_lifecycle(REPO / "sop")
    assert [t.name for t in seg.tiers] == ["mass", "affluent", "wealth", "private"]
    assert lc.stages[-1].rule.tests == ()  # the catch-all
    use_sop(monkeypatch, REPO / "sop")
    assert main(["segments", "check"]) == 0
    out = capsys.readouterr().out
    assert "stage silent (沉默) churn_risk" in out


def test_a_broken_file_is_file_line_errors_and_exit_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    sop = tmp_path / "sop"
    shutil.copytree(REPO / "sop", sop)
    (sop / "segments.yaml").write_text(
        "tiers:\n"
        "  levels:\n"
        "    - {name: mass, from: 0}\n"
        "    - {name: rich, from: lots}\n"          # line 4: not a number
        "segments:\n"
        "  payroll: {when: {products: {hass: payroll}}}\n"  # line 6: unknown test
        "grade:\n"
        "  factors: {aum: {attribute: aum, weight: 1, cap: 0}}\n"  # line 8: cap 0
        "  grades: [{name: A, min: 50}]\n",         # line 9: the last grade must start at 0
        encoding="utf-8")
    (sop / "lifecycle.yaml").write_text(
        "stages:\n"
        "  - {name: silent, when: {days_since_kontakt: {min: 60}}}\n"  # line 2: unknown field
        "  - {name: Active}\n",                                          # line 3: not a name
        encoding="utf-8")
    use_sop(monkeypatch, sop)
    assert main(["segments", "check"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert "sop/segments.yaml:4: tiers.levels[1].from: must be a number ≥ 0 (50万 works), got 'lots'" in err
    assert any(e.startswith("sop/segments.yaml:6: segments.payroll.when.products.hass: unknown test") for e in err)
    assert any(e.startswith("sop/segments.yaml:8: grade.factors.aum.cap: must be above 0") for e in err)
    assert any(e.startswith("sop/segments.yaml:9: grade.grades[0].min: the last grade must start at 0")
               for e in err)
    assert any(e.startswith("sop/lifecycle.yaml:2: stages[0].when.days_since_kontakt: unknown field") for e in err)
    assert any(e.startswith("sop/lifecycle.yaml:3: stages[1].name: must be a lower-case name") for e in err)
    assert err[-1] == f"scrm: {len(check(sop))} problem(s) in the segmentation rules"
    assert not any("Traceback" in e for e in err)


def test_unreadable_yaml_is_one_line_too(tmp_path: Path) -> None:
    (tmp_path / "lifecycle.yaml").write_text("stages: [\n", encoding="utf-8")
    issues = check(tmp_path)
    assert issues and all(str(i).startswith(f"{tmp_path.name}/lifecycle.yaml:") for i in issues)
