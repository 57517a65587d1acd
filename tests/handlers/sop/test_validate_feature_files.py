"""``scrm sop validate`` checks the features' own playbook files with the SOP engine's: a broken
``sop/membership.yaml``, ``sop/segments.yaml`` or ``sop/lifecycle.yaml`` is one ``file:line: key:
message`` each, exit 2, as their own ``check`` commands say."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from scrm.cli import main
from tests.support.playbooks import REPO

BREAKS = {  # file → (text replaced, by what): each a value the file's rules refuse
    "membership.yaml": ("window_days: 365", "window_days: a-year"),
    "segments.yaml": ("hysteresis: 0.05", "hysteresis: lots"),
    "lifecycle.yaml": ("min_stay_days: 7", "min_stay_days: a-week"),
}


def line_of(path: Path, text: str) -> int:
    return next(i for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if text in line)


@pytest.mark.parametrize("name", sorted(BREAKS))
def test_a_broken_feature_file_fails_validate_at_its_line(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    sop, materials = tmp_path / "sop", tmp_path / "materials"
    shutil.copytree(REPO / "sop", sop)
    shutil.copytree(REPO / "materials", materials)
    monkeypatch.setenv("SCRM_PLAYBOOK__SOP_DIR", str(sop))
    monkeypatch.setenv("SCRM_PLAYBOOK__MATERIALS_DIR", str(materials))
    assert main(["sop", "validate"]) == 0
    capsys.readouterr()
    path = sop / name
    old, new = BREAKS[name]
    path.write_text(path.read_text(encoding="utf-8").replace(old, new), encoding="utf-8")
    assert main(["sop", "validate"]) == 2
    problems = [x for x in capsys.readouterr().out.splitlines() if not x.startswith("warning: ")]
    assert len(problems) == 1 and problems[0].startswith(f"sop/{name}:{line_of(path, new.split(':')[0] + ':')}: ")
    assert new.split(": ")[1] in problems[0] or new.split(":")[0] in problems[0]
