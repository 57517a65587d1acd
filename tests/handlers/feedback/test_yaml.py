"""sop/feedback.yaml and survey materials are checked by ``scrm sop validate``: every problem as
``file:line: key: message`` (exit 2); the shipped files are valid."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import pytest

from handlers.sop.cli import cmd_validate
from tests.conftest import make_settings
from tests.support.playbooks import REPO

GOOD = (REPO / "sop" / "feedback.yaml").read_text(encoding="utf-8")


def playbook(tmp_path: Path, feedback: str | None = None, extra_material: str = "") -> Path:
    """A copy of the shipped sop/ and materials/ with ``feedback`` as sop/feedback.yaml."""
    shutil.copytree(REPO / "sop", tmp_path / "sop")
    shutil.copytree(REPO / "materials", tmp_path / "materials")
    if feedback is not None:
        (tmp_path / "sop" / "feedback.yaml").write_text(feedback, encoding="utf-8")
    if extra_material:
        (tmp_path / "materials" / "extra.yaml").write_text(extra_material, encoding="utf-8")
    return tmp_path


def validate(root: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    settings = make_settings("sqlite+aiosqlite:///unused.db",
                             playbook={"sop_dir": str(root / "sop"), "materials_dir": str(root / "materials")})
    code = cmd_validate(argparse.Namespace(date="2026-12-07", strict=False), settings)
    return code, [line for line in capsys.readouterr().out.splitlines() if not line.startswith("warning:")]


def test_the_shipped_surveys_and_materials_are_valid(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, lines = validate(playbook(tmp_path), capsys)
    assert code == 0, lines
    assert lines[-1].startswith("ok: ")


BROKEN = """\
surveys:
  nps-a:
    kind: nps
    question: 推荐吗？
    thanks: 谢谢
    colour: blue
  nps-b:
    kind: stars
    question: 满意吗？
    thanks: 谢谢
  nps-c:
    kind: csat
    question: 满意吗？
    thanks: 谢谢
    alert: {max_score: 5}
  nps-d:
    kind: nps
    question: 推荐吗？
    thanks: 谢谢
    valid_days: 0
  nps-e:
    kind: nps
    question: 推荐吗？
    thanks: 谢谢
    tags: {promoter: 满意度/超级粉丝, detractor: 客户等级/V1}
"""


def test_each_problem_names_its_line_and_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    material = """\
- id: survey-typo
  type: link
  survey: nps-onboardin
  link: {title: 打分, url: "https://www.example.com/"}
- id: survey-in-groups
  type: link
  survey: nps-a
  channels: [group, private]
  link: {title: 打分, url: "https://www.example.com/"}
"""
    code, lines = validate(playbook(tmp_path, BROKEN, material), capsys)
    assert code == 2
    text = "\n".join(lines)
    expected = [
        "sop/feedback.yaml:6: surveys.nps-a.colour:",
        "sop/feedback.yaml:8: surveys.nps-b.kind:",
        # 5 is the top of a 1–5 scale: every answer would alert.
        "sop/feedback.yaml:15: surveys.nps-c.alert.max_score: must be 1..4 on a csat survey, got 5",
        "sop/feedback.yaml:20: surveys.nps-d.valid_days:",
        "sop/feedback.yaml:25: surveys.nps-e.tags.promoter: unknown tag '满意度/超级粉丝'",
        "sop/feedback.yaml:25: surveys.nps-e.tags.detractor: tag '客户等级/V1' is owned by CRM sync",
        "materials/extra.yaml:3: [0].survey: unknown survey 'nps-onboardin': declare it in sop/feedback.yaml",
        "materials/extra.yaml:5: [1]: a survey material is type link with channels [private]",
        # The shipped materials name surveys this file no longer has.
        "materials/feedback.yaml:6: [0].survey: unknown survey 'nps-onboarding'",
    ]
    for start in expected:
        assert any(line.startswith(start) for line in lines), f"{start!r} not in:\n{text}"
