"""Banned claims (sop/compliance/claims.yaml): an error at the offending line for CI; in the
running service the material is withheld, everything else keeps going."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from scrm.playbook import load_playbook, material_findings

from .factory import TODAY, errors, make_playbook

CLAIMS = """\
    approval_needs_hash: false
    claims:
      - word: 保本
        label: 承诺保本
        allow: [不保本]
      - word: 稳赚
        label: 承诺收益
      - pattern: 预期(年化)?收益率?
        label: 不得使用预期收益率
    """

# Line 6 is the second text line of `hello`; line 12 the link title of `salon`.
MATERIALS = """\
    - id: hello
      type: text
      channels: [private, group]
      text: |
        您好，我是{manager.name}。
        这款理财保本，稳赚不赔。
      approved: {by: 合规-王, at: 2026-01-05}
    - id: salon
      type: link
      text: 理财沙龙报名
      link:
        title: 预期年化收益率一览
        desc: 本产品不保本，投资须谨慎
        url: https://bank.example.com/salon
    - id: group-hello
      type: quick_reply
      channels: [manager]
      quick_reply:
        question: 这个产品保本吗？
        answer: 不保本，请您阅读产品说明书。
    """


def line_of(text: str, needle: str) -> int:
    """1-based line of ``needle`` in the fixture as written (dedented like the factory writes it)."""
    return next(i for i, ln in enumerate(text.splitlines(), 1) if needle in ln)


def claims_errors(tmp_path: Path, materials: str = MATERIALS, claims: str = CLAIMS) -> list[str]:
    return errors(tmp_path, materials__base_yaml=materials, sop__compliance__claims_yaml=claims,
                  sop__channels_yaml=None, sop__calendars__payroll_yaml=None, sop__paths__wealth_yaml=None,
                  sop__reminders_yaml=None)


def test_each_banned_claim_is_an_error_at_its_own_line(tmp_path: Path) -> None:
    found = claims_errors(tmp_path)
    text_line, title_line = line_of(MATERIALS, "这款理财保本"), line_of(MATERIALS, "title: 预期")
    assert found == [
        f"materials/base.yaml:{text_line}: [0].text: banned claim '保本' (承诺保本; sop/compliance/claims.yaml)",
        f"materials/base.yaml:{text_line}: [0].text: banned claim '稳赚' (承诺收益; sop/compliance/claims.yaml)",
        f"materials/base.yaml:{title_line}: [1].link.title: banned claim '预期年化收益率' "
        "(不得使用预期收益率; sop/compliance/claims.yaml)",
    ]
    # 不保本 in the link's description and the quick reply's answer is a disclosure, and the
    # customer's question (这个产品保本吗？) is what the manager answers: neither is a claim.


def test_a_quick_reply_answer_is_searched(tmp_path: Path) -> None:
    materials = MATERIALS.replace("answer: 不保本，请您阅读产品说明书。", "answer: 放心，稳赚的。")
    found = claims_errors(tmp_path, materials)
    assert f"materials/base.yaml:{line_of(materials, 'answer:')}: [2].quick_reply.answer: banned claim '稳赚' " \
           "(承诺收益; sop/compliance/claims.yaml)" in found


def test_no_claims_file_no_claims_and_other_compliance_files_are_not_the_loaders(tmp_path: Path) -> None:
    sop, materials = make_playbook(tmp_path, materials__base_yaml=MATERIALS, sop__channels_yaml=None,
                                   sop__calendars__payroll_yaml=None, sop__paths__wealth_yaml=None,
                                   sop__reminders_yaml=None)
    # Files other features own in the compliance team's folder: neither loaded nor "ignored".
    (sop / "compliance").mkdir()
    (sop / "compliance" / "review.yaml").write_text("rules: [{words: [转账到个人账户]}]\n", encoding="utf-8")
    pb = load_playbook(sop, materials, today=TODAY)
    assert set(pb.materials) == {"hello", "salon", "group-hello"}
    assert pb.warnings == ()


def test_a_broken_claims_file_is_reported_at_its_line(tmp_path: Path) -> None:
    claims = CLAIMS.replace("- word: 稳赚", "- word: 稳赚\n        pattern: 稳赢")
    found = claims_errors(tmp_path, claims=claims)
    at = line_of(claims, "- word: 稳赚")
    assert found == [f"sop/compliance/claims.yaml:{at}: claims[1]: give exactly one of word or pattern"]
    bad = claims_errors(tmp_path, claims="claims:\n  - {pattern: '保(本', label: x}\n")
    assert len(bad) == 1
    assert bad[0].startswith("sop/compliance/claims.yaml:2: claims[0].pattern: bad regular expression")


def test_the_running_service_withholds_only_the_material_with_a_claim(tmp_path: Path) -> None:
    sop, materials = make_playbook(tmp_path, materials__base_yaml=MATERIALS, sop__compliance__claims_yaml=CLAIMS,
                                   sop__channels_yaml=None, sop__calendars__payroll_yaml=None,
                                   sop__paths__wealth_yaml=None, sop__reminders_yaml=None)
    pb = load_playbook(sop, materials, today=TODAY, withhold_content=True)
    hello = pb.materials["hello"]
    assert hello.compliance_problem(TODAY) == ("material 'hello' has a banned claim '保本' "
                                                "(承诺保本; sop/compliance/claims.yaml)")
    assert pb.materials["group-hello"].compliance_problem(TODAY) == (
        "material 'group-hello' is not approved (add approved: {by, at})")  # no claim: as before
    said = [str(w) for w in pb.warnings]
    assert any(w.startswith(f"materials/base.yaml:{line_of(MATERIALS, '这款理财保本')}: [0].text: banned claim '保本'")
               and w.endswith("not sent until fixed") for w in said), said


def test_a_withheld_material_in_use_is_reported_blocked_with_its_steps(tmp_path: Path) -> None:
    sop, materials = make_playbook(tmp_path, materials__base_yaml=MATERIALS.replace("[private, group]", "[group]"),
                                   sop__compliance__claims_yaml=CLAIMS, sop__channels_yaml=None,
                                   sop__paths__wealth_yaml=None, sop__reminders_yaml=None,
                                   sop__calendars__payroll_yaml="""\
                                       calendar: payroll-groups
                                       group_type: payroll
                                       steps:
                                         - {day: 0, at: "10:00", send: hello}
                                       """)
    pb = load_playbook(sop, materials, today=date(2026, 6, 1), withhold_content=True)
    [finding] = material_findings(pb, date(2026, 6, 1))
    assert finding.material == "hello" and finding.blocked
    assert finding.uses == ("sop/calendars/payroll.yaml:4 steps[0].send",)
    assert any("skipped sop/calendars/payroll.yaml:4 steps[0].send" in str(w) for w in pb.warnings)
