"""``sop/experiments/*.yaml`` from an ops admin's chair: ``scrm experiments validate`` prints what
each experiment does, or every problem as ``file:line: key: message`` with exit 2."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from scrm.cli import main
from tests.support.playbooks import REPO

STEP = "path:payroll-wealth/payday+1workday-1000-wealth-plan-after-payday"


def playbook_with(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, files: dict[str, str]) -> Path:
    sop = tmp_path / "sop"
    shutil.copytree(REPO / "sop", sop)
    (sop / "experiments").mkdir(exist_ok=True)
    for name, text in files.items():
        (sop / "experiments" / name).write_text(text, encoding="utf-8")
    monkeypatch.setenv("SCRM_PLAYBOOK__SOP_DIR", str(sop))
    monkeypatch.setenv("SCRM_PLAYBOOK__MATERIALS_DIR", str(REPO / "materials"))
    return sop


def test_a_good_file_validates_and_the_power_spec_gives_the_sample(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    playbook_with(tmp_path, monkeypatch, {"copy.yaml": (
        "experiment: wealth-copy\n"
        f"step: {STEP}\n"
        "variants:\n"
        "  a: {weight: 60}\n"
        "  b: {material: short-term-liquidity-offer, weight: 40}\n"
        "holdout: 10\n"
        "power: {baseline: 0.10, mde: 0.05, alpha: 0.05, power: 0.8}\n")})
    assert main(["experiments", "validate"]) == 0
    out = capsys.readouterr().out.splitlines()
    # Fleiss: 10 % → 15 % at alpha 0.05 and power 0.8 needs 686 per group; the goal is the step's own.
    assert out == [f"sop/experiments/copy.yaml:1: wealth-copy on {STEP}: a 54% (as written), "
                   "b 36% (short-term-liquidity-offer), holdout 10%; goal purchase.wealth within 14 days; "
                   "planned 686 per variant",
                   "ok: 1 experiment(s)"]


def test_a_broken_file_is_file_line_errors_and_exit_2(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    playbook_with(tmp_path, monkeypatch, {"bad.yaml": (
        "experiment: wealth-copy\n"
        "step: path:payroll-wealth/no-such-step\n"           # 2
        "variants:\n"
        "  a: {weight: 50}\n"
        "  b: {material: no-such-material, weight: 50}\n"    # 5
        "  holdout: {weight: 1}\n"                           # 6: a reserved name
        "holdout: 80\n"                                      # 7
        "goal: {event: purchase.yacht, within_days: 14}\n"   # 8
        "planned_sample: 2000\n"
        "colour: blue\n"),                                   # 10
        "other.yaml": (
        "experiment: second\n"
        f"step: {STEP}\n"
        "variants:\n"
        "  only: {weight: 1}\n")})                           # 3: one variant without a holdout; no sample
    assert main(["experiments", "validate"]) == 2
    err = capsys.readouterr().err.splitlines()
    expected = [
        "sop/experiments/bad.yaml:2: step: path 'payroll-wealth' has no step 'no-such-step'; its steps: "
        "payday+1workday-1000-wealth-plan-after-payday",
        "sop/experiments/bad.yaml:5: variants.b.material: unknown material 'no-such-material'",
        "sop/experiments/bad.yaml:6: variants.holdout: must be a lower-case name (a-z, 0-9, - and _), not "
        "'holdout', got 'holdout'",
        "sop/experiments/bad.yaml:7: holdout: must be a number 0..50, got 80",
        "sop/experiments/bad.yaml:10: colour: unknown key; expected one of experiment, name, step, control, "
        "variants, holdout, goal, planned_sample, power, alpha, active",
        "sop/experiments/other.yaml:1: needs planned_sample: (customers per variant) or power: "
        "{baseline, mde, alpha, power}, not both",
        "sop/experiments/other.yaml:3: variants: one variant needs a holdout: to compare with (or give two or "
        "more variants)",
    ]
    for line in expected:
        assert line in err, (line, err)
    assert any(e.startswith("sop/experiments/bad.yaml:8: goal.event: ") for e in err), err
    assert err[-1] == f"scrm: {len(err) - 1} problem(s) in sop/experiments/"
    assert not any("Traceback" in e for e in err)


def test_two_experiments_on_one_step_are_refused(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    body = f"step: {STEP}\nvariants: {{a: {{weight: 1}}}}\nholdout: 10\nplanned_sample: 100\n"
    playbook_with(tmp_path, monkeypatch, {"a.yaml": "experiment: one\n" + body, "b.yaml": "experiment: two\n" + body})
    assert main(["experiments", "validate"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert "sop/experiments/b.yaml:2: step: the step already runs experiment 'one'" in err
