"""Approval bound to content: `scrm materials approve` writes {by, at, hash}; an edit loses it
(an error for `scrm sop validate`, a refusal at the send gate) until approved again."""

from __future__ import annotations

import argparse
import hashlib
import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from handlers.compliance.api import material_hash as trail_material_hash
from handlers.sop.approve_cli import cmd_approve
from scrm.cli import main
from scrm.kernel.clock import FakeClock
from scrm.playbook import PlaybookError, load_playbook
from scrm.playbook.approve import ApprovalRefused, approve_materials

from .factory import REPO, TODAY, make_playbook

CLAIMS = """\
    approval_needs_hash: true
    claims:
      - {word: 稳赚, label: 承诺收益}
    """

# Comments, a block text, a flow approval and a material without one: all must survive.
MATERIALS = """\
    # Materials for the approval tests. Kept by ops; approved by compliance.
    - id: hello
      type: text
      # the default welcome
      text: |
        您好，我是{manager.name}。
        有事随时找我。
      approved: {by: 合规-王, at: 2026-01-05}

    - id: group-hello
      type: text
      channels: [group]
      text: 欢迎加入{group.name}  # plain text, with a comment after it
    """


def sha(content: Any) -> str:
    return hashlib.sha256(json.dumps(content, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
                          .encode()).hexdigest()


# The content each approval covers, written out from the fixture above: what is not a default.
HELLO = {"id": "hello", "type": "text", "text": "您好，我是{manager.name}。\n有事随时找我。\n"}
GROUP_HELLO = {"id": "group-hello", "type": "text", "channels": ["group"], "text": "欢迎加入{group.name}"}


def playbook(tmp_path: Path, materials: str = MATERIALS) -> tuple[Path, Path]:
    return make_playbook(tmp_path, materials__base_yaml=materials, sop__compliance__claims_yaml=CLAIMS,
                         sop__calendars__payroll_yaml=None, sop__paths__wealth_yaml=None)


def validate_errors(sop: Path, materials: Path) -> list[str]:
    try:
        load_playbook(sop, materials, today=TODAY)
    except PlaybookError as exc:
        return [str(e) for e in exc.errors]
    return []


def test_approve_writes_who_when_and_the_hash_and_keeps_the_file(tmp_path: Path) -> None:
    sop, materials = playbook(tmp_path)
    path = materials / "base.yaml"
    before = path.read_text(encoding="utf-8").splitlines()
    done = approve_materials(sop, materials, ["hello", "group-hello"], by="合规-李", at=date(2026, 5, 20))
    assert [(a.material, a.file, a.line, a.hash) for a in done] == [
        ("hello", "materials/base.yaml", 2, sha(HELLO)), ("group-hello", "materials/base.yaml", 10, sha(GROUP_HELLO))]
    after = path.read_text(encoding="utf-8").splitlines()
    # Only the approval lines differ: one rewritten in place, one added after the last key.
    hello_at = before.index("  approved: {by: 合规-王, at: 2026-01-05}")
    assert after[:hello_at] == before[:hello_at] and after[hello_at + 1:] == [
        *before[hello_at + 1:], f"  approved: {{by: 合规-李, at: 2026-05-20, hash: {sha(GROUP_HELLO)}}}"]
    assert after[hello_at] == f"  approved: {{by: 合规-李, at: 2026-05-20, hash: {sha(HELLO)}}}"
    pb = load_playbook(sop, materials, today=TODAY)
    assert pb.warnings == () and pb.materials["hello"].compliance_problem(TODAY) is None


def test_an_edit_is_refused_by_validate_and_the_gate_until_approved_again(tmp_path: Path) -> None:
    sop, materials = playbook(tmp_path)
    approve_materials(sop, materials, ["hello", "group-hello"], by="合规-李", at=date(2026, 5, 20))
    path = materials / "base.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("有事随时找我。", "有事随时找我，理财稳赚。"),
                    encoding="utf-8")
    # An edit that adds a banned claim: the claim at its line, the approval at its own.
    assert validate_errors(sop, materials) == [
        "materials/base.yaml:7: [0].text: banned claim '稳赚' (承诺收益; sop/compliance/claims.yaml)",
        "materials/base.yaml:8: [0].approved: the content changed since it was approved by 合规-李 on 2026-05-20; "
        "run `scrm materials approve hello`",
    ]
    with pytest.raises(ApprovalRefused, match=r"^material 'hello' cannot be approved: materials/base.yaml:7: "
                                              r"banned claim '稳赚'"):
        approve_materials(sop, materials, ["hello"], by="合规-李", at=date(2026, 5, 21))
    path.write_text(path.read_text(encoding="utf-8").replace("理财稳赚", "周末也在"), encoding="utf-8")
    assert validate_errors(sop, materials) == [
        "materials/base.yaml:8: [0].approved: the content changed since it was approved by 合规-李 on 2026-05-20; "
        "run `scrm materials approve hello`"]
    # The running service loads it, withholds that material only, and says so.
    served = load_playbook(sop, materials, today=TODAY, withhold_content=True)
    assert served.materials["hello"].compliance_problem(TODAY) == (
        "material 'hello' changed since it was approved on 2026-05-20; run `scrm materials approve hello`")
    assert served.materials["group-hello"].compliance_problem(TODAY) is None
    assert [w.line for w in served.warnings if w.file == "materials/base.yaml"] == [8]
    # Approved again: valid, and sendable.
    approve_materials(sop, materials, ["hello"], by="合规-李", at=date(2026, 5, 22))
    assert validate_errors(sop, materials) == []
    edited = {**HELLO, "text": "您好，我是{manager.name}。\n有事随时找我，周末也在。\n"}
    hello = load_playbook(sop, materials, today=TODAY).materials["hello"]
    assert hello.approved is not None and hello.approved.hash == sha(edited)
    assert hello.compliance_problem(TODAY) is None


def test_a_sign_off_change_is_no_edit(tmp_path: Path) -> None:
    sop, materials = playbook(tmp_path)
    approve_materials(sop, materials, ["hello"], by="合规-李", at=date(2026, 5, 20))
    path = materials / "base.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("\n\n- id: group-hello", "\n  valid_until: 2026-12-31\n\n"
                                                             "- id: group-hello"), encoding="utf-8")
    assert validate_errors(sop, materials) == []


def test_hash_less_approvals_per_the_compliance_switch(tmp_path: Path) -> None:
    sop, materials = playbook(tmp_path)
    hashless = "materials/base.yaml:8: [0].approved: approval has no content hash"
    [error] = validate_errors(sop, materials)
    assert error.startswith(hashless) and "requires one" in error
    gate = load_playbook(sop, materials, today=TODAY, withhold_content=True).materials["hello"]
    assert gate.compliance_problem(TODAY) == ("material 'hello' is approved without a content hash; "
                                              "run `scrm materials approve hello`")
    (sop / "compliance" / "claims.yaml").write_text("approval_needs_hash: false\n", encoding="utf-8")
    pb = load_playbook(sop, materials, today=TODAY)  # migrating: a warning, still sendable
    assert [str(w) for w in pb.warnings] == [
        f"{hashless} (approval_needs_hash: false while migrating); run `scrm materials approve hello`"]
    assert pb.materials["hello"].compliance_problem(TODAY) is None


def test_refusals_change_nothing(tmp_path: Path) -> None:
    sop, materials = playbook(tmp_path)
    path = materials / "base.yaml"
    before = path.read_text(encoding="utf-8")
    with pytest.raises(ApprovalRefused, match=r"^unknown material 'helo' \(not in materials/\); did you mean 'hello'"):
        approve_materials(sop, materials, ["hello", "helo"], by="合规-李", at=date(2026, 5, 20))
    path.write_text(before.replace("approved: {by: 合规-王, at: 2026-01-05}",
                                   "approved: {by: 合规-王, at: 2026-01-05}\n  valid_until: 2026-03-01"))
    before = path.read_text(encoding="utf-8")
    with pytest.raises(ApprovalRefused, match=r"^material 'hello' cannot be approved: materials/base.yaml:2: \[0\]: "
                                              r"valid_until 2026-03-01 is before the approval date 2026-05-20"):
        approve_materials(sop, materials, ["group-hello", "hello"], by="合规-李", at=date(2026, 5, 20))
    assert path.read_text(encoding="utf-8") == before


def test_cli_approves_as_of_the_clocks_day_and_refuses_in_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    sop, materials = playbook(tmp_path)
    monkeypatch.setenv("SCRM_PLAYBOOK__SOP_DIR", str(sop))
    monkeypatch.setenv("SCRM_PLAYBOOK__MATERIALS_DIR", str(materials))
    assert main(["materials", "approve", "hello", "nope", "--by", "合规-李"]) == 2
    assert capsys.readouterr().err == "scrm: unknown material 'nope' (not in materials/)\n"
    assert main(["materials", "approve", "hello", "--by", "合规-李", "--at", "2026-13-01"]) == 2
    assert capsys.readouterr().err.count("\n") == 1

    from scrm.main import load_settings

    # 16:30 UTC on May 31 is already June 1 at the bank (Asia/Shanghai).
    clock = FakeClock(datetime(2026, 5, 31, 16, 30, tzinfo=UTC))
    args = argparse.Namespace(ids=["group-hello"], by="合规-李", at=None)
    assert cmd_approve(args, load_settings(None), clock=clock) == 0
    assert capsys.readouterr().out == (f"approved group-hello (materials/base.yaml:10) by 合规-李 on 2026-06-01, "
                                       f"content {sha(GROUP_HELLO)[:12]}\n")


def test_the_trail_records_the_hash_the_approval_holds() -> None:
    pb = load_playbook(REPO / "sop", REPO / "materials", today=TODAY)
    for material in pb.materials.values():
        if material.approved is not None:
            assert material.approved.hash == trail_material_hash(material) == material.content_hash
    welcome = pb.materials["welcome-default"]
    assert welcome.approved is not None and welcome.text is not None
    content = {"id": "welcome-default", "type": "text", "title": welcome.title, "text": welcome.text}
    assert welcome.approved.hash == sha({k: v for k, v in content.items() if v is not None})


def test_the_service_reloads_an_edit_and_withholds_only_that_material(tmp_path: Path) -> None:
    from scrm.kernel.config import PlaybookSettings
    from scrm.playbook.holder import PlaybookHolder

    sop, materials = playbook(tmp_path)
    approve_materials(sop, materials, ["hello", "group-hello"], by="合规-李", at=date(2026, 5, 20))
    holder = PlaybookHolder(PlaybookSettings(sop_dir=sop, materials_dir=materials),
                            FakeClock(datetime(2026, 6, 1, 2, 0, tzinfo=UTC)))
    holder.load()
    path = materials / "base.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("有事随时找我。", "有事随时找我，稳赚。"),
                    encoding="utf-8")
    outcome = holder.reload()
    assert outcome.applied  # not refused: every other material keeps going out
    current = holder.current
    assert current is not None
    assert current.materials["hello"].compliance_problem(TODAY) == (
        "material 'hello' changed since it was approved on 2026-05-20; run `scrm materials approve hello`")
    assert current.materials["group-hello"].compliance_problem(TODAY) is None
    assert [f.material for f in holder.findings() if f.blocked] == ["hello"]  # the welcome: in use
