"""The access file: every problem at file:line with its key, and a file with any problem grants
nothing; `scrm console check` prints them and exits 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from handlers.console.access import Grant, Role, load_access

BROKEN = """\
members:
  zhouhai: {role: ops_admin}
  mali: {role: branch_head}
  wangqiang: {role: captain, scope: 杭州分行}
  sunhui: {role: auditor, scope: 杭州分行}
  xuming: {role: team_lead, scope: 杭州分行/城东支行, extra: 1}
"""


def test_every_problem_is_reported_and_nothing_is_granted(tmp_path: Path) -> None:
    path = tmp_path / "console.yaml"
    path.write_text(BROKEN, encoding="utf-8")
    access = load_access(path, "sop/console.yaml")
    assert [str(e) for e in access.errors] == [
        "sop/console.yaml:3: members.mali.scope: branch_head needs a scope: a department path such as 分行/支行/团队",
        "sop/console.yaml:4: members.wangqiang.role: unknown role 'captain' (one of ops_admin, auditor, "
        "branch_head, team_lead, compliance_officer)",
        "sop/console.yaml:5: members.sunhui.scope: auditor sees the whole bank; remove scope",
        "sop/console.yaml:6: members.xuming.extra: unknown key (expected role, scope)",
    ]
    assert access.grant_of("zhouhai") is None  # one mistake locks everyone but the local admin out


def test_scopes_cover_their_department_and_below_only(tmp_path: Path) -> None:
    path = tmp_path / "console.yaml"
    path.write_text("members:\n  mali: {role: branch_head, scope: /杭州分行/城西支行/ }\n", encoding="utf-8")
    grant = load_access(path).grant_of("mali")
    assert grant == Grant("mali", Role.BRANCH_HEAD, "杭州分行/城西支行")
    assert grant.covers("杭州分行/城西支行") and grant.covers("杭州分行/城西支行/代发服务团队")
    assert not grant.covers("杭州分行/城西支行二部") and not grant.covers("杭州分行")
    assert Grant("a", Role.AUDITOR).covers("anything")


def test_console_check_command(tmp_path: Path) -> None:
    (tmp_path / "sop").mkdir()
    (tmp_path / "sop" / "console.yaml").write_text(BROKEN, encoding="utf-8")
    run = subprocess.run([sys.executable, "-m", "scrm.cli", "console", "check"], cwd=tmp_path, capture_output=True,
                         text=True, env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}, timeout=60)
    assert run.returncode == 2, run.stderr
    assert run.stderr.splitlines()[0].startswith("sop/console.yaml:3: members.mali.scope:")
    assert "Traceback" not in run.stderr
    (tmp_path / "sop" / "console.yaml").write_text("members:\n  zhouhai: {role: ops_admin}\n", encoding="utf-8")
    run = subprocess.run([sys.executable, "-m", "scrm.cli", "console", "check"], cwd=tmp_path, capture_output=True,
                         text=True, env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}, timeout=60)
    assert run.returncode == 0 and "1 member(s): 1 ops_admin" in run.stdout, run.stderr
