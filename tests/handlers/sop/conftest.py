"""A seeded bank branch for SOP engine tests: one manager, a payroll group, a few customers."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def playbook_dirs(tmp_path: Path) -> dict[str, Path]:
    """A copy of the shipped playbook where the December salary notice has expired."""
    sop, materials = tmp_path / "pb" / "sop", tmp_path / "pb" / "materials"
    shutil.copytree(ROOT / "sop", sop)
    shutil.copytree(ROOT / "materials", materials)
    p = materials / "payroll.yaml"
    text = p.read_text()
    head, sep, tail = text.partition("- id: payroll-salary-notice")
    p.write_text(head + sep + tail.replace("valid_until: 2027-06-30", "valid_until: 2026-11-30"))
    return {"sop_dir": sop, "materials_dir": materials}
