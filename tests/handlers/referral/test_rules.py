"""``sop/referral.yaml``: the shipped file reads; every mistake is one ``file:line: key: message``
(all of them, not the first, in line order), from ``scrm referral check`` and from ``scrm sop validate``."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from handlers.crm.api import EVENT_KINDS
from handlers.referral.rules import Reward, check, load_referral
from scrm.cli import main
from tests.support.playbooks import REPO

BROKEN = """\
qualify:
  on: [crm.card.activated, crm.card.activatd, crm.card.activated]
  within_days: 0
rewards:
  referrer: {points: -5, gift: ""}
  friend: {point: 100}
caps: {referrer_per_month: many}
flags:
  burst: {referrals: 1}
super_users: {top: 3}
colour: blue
"""


def test_the_shipped_file_reads() -> None:
    rules = load_referral(REPO / "sop", EVENT_KINDS)
    assert rules.qualify_on == ("account.opened", "card.activated", "purchase.wealth")
    assert rules.within_days == 30 and rules.referrer_per_month == 5
    assert rules.referrer == Reward(points=300, growth=100)
    assert rules.friend == Reward(points=100, gift="新客开户礼（定制保温杯）")


def test_no_file_rewards_nobody(tmp_path: Path) -> None:
    rules = load_referral(tmp_path, EVENT_KINDS)
    assert rules.qualify_on == () and rules.referrer.empty and rules.friend.empty


def test_every_mistake_names_its_line_and_key(tmp_path: Path) -> None:
    (tmp_path / "referral.yaml").write_text(BROKEN, encoding="utf-8")
    got = [str(i) for i in check(tmp_path, EVENT_KINDS)]
    name = f"{tmp_path.name}/referral.yaml"
    assert got == [
        f"{name}:2: qualify.on[1]: unknown CRM event 'crm.card.activatd'; expected one of "
        + ", ".join(f"crm.{k}" for k in sorted(EVENT_KINDS)),
        f"{name}:2: qualify.on[2]: 'crm.card.activated' is listed twice",
        f"{name}:3: qualify.within_days: must be a whole number 1..366, got 0",
        f"{name}:4: rewards: rewards nobody: give the referrer or the friend points:, growth: or gift:",
        f"{name}:5: rewards.referrer.gift: must be a non-empty text (what the manager hands over)",
        f"{name}:5: rewards.referrer.points: must be a whole number 0..1000000, got -5",
        f"{name}:6: rewards.friend.point: unknown key; expected one of points, growth, gift",
        f"{name}:7: caps.referrer_per_month: must be a whole number 0..1000, got 'many'",
        f"{name}:9: flags.burst: needs within_hours:",
        f"{name}:9: flags.burst.referrals: must be a whole number 2..10000, got 1",
        f"{name}:11: colour: unknown key; expected one of qualify, rewards, caps, flags, super_users",
    ]


def test_sop_validate_and_referral_check_report_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    sop, materials = tmp_path / "sop", tmp_path / "materials"
    shutil.copytree(REPO / "sop", sop)
    shutil.copytree(REPO / "materials", materials)
    monkeypatch.setenv("SCRM_PLAYBOOK__SOP_DIR", str(sop))
    monkeypatch.setenv("SCRM_PLAYBOOK__MATERIALS_DIR", str(materials))
    assert main(["sop", "validate"]) == 0
    assert capsys.readouterr().out.splitlines()[-1].startswith("ok: ")
    assert main(["referral", "check"]) == 0
    assert capsys.readouterr().out.startswith("sop/referral.yaml: converts on crm.account.opened, crm.card.activated, "
                                              "crm.purchase.wealth within 30 day(s); referrer earns 300 points")
    path = sop / "referral.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("within_days: 30", "within_days: thirty"),
                    encoding="utf-8")
    line = next(i for i, text in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if "thirty" in text)
    problem = f"sop/referral.yaml:{line}: qualify.within_days: must be a whole number 1..366, got 'thirty'"
    assert main(["sop", "validate"]) == 2
    assert [x for x in capsys.readouterr().out.splitlines() if not x.startswith("warning: ")] == [problem]
    assert main(["referral", "check"]) == 2
    assert capsys.readouterr().err.splitlines() == [problem, "scrm: 1 problem(s) in the referral rules"]
