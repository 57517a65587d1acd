"""Playbooks for the test stack, written into a test's temporary folder.

Two kinds:

- ``write_playbook``: a small lifecycle playbook (policy, tags, channels, groups, welcome materials)
  wired to the sandbox demo's members; ``channels=`` / ``groups=`` / ``materials=`` / ``tags=``
  replace one file.
- ``write_shipped_playbook``: the shipped playbook (``sop/`` and ``materials/`` of the repository)
  without its calendars and paths, plus the calendars, paths and materials a test gives.
"""

from __future__ import annotations

import os
import shutil
import textwrap
from pathlib import Path

from pydantic import ValidationError

from scrm.playbook.approve import rewrite_approvals
from scrm.playbook.models import Material
from scrm.playbook.yamlsrc import read_yaml

__all__ = ["APPROVED", "CHANNELS", "GROUPS", "MATERIALS", "PDF", "POLICY", "REPO", "SOP_MATERIALS", "TAGS",
           "stamp_approvals", "write_playbook", "write_shipped_playbook"]

REPO = Path(__file__).resolve().parents[2]

# -- the small lifecycle playbook ------------------------------------------------------------------

POLICY = """\
timezone: Asia/Shanghai
quiet_hours: "21:00-08:30"
opt_out_tag: 偏好/免打扰
risk_disclosure: "理财非存款，产品有风险，投资须谨慎。"
"""

TAGS = """\
groups:
  渠道:
    owner: manager
    tags: [代发开卡, 网点大堂, 理财沙龙, 信用卡活动]
  兴趣:
    owner: manager
    tags: [理财, 健康, 旅游]
  偏好:
    owner: manager
    tags: [免打扰]
"""

# The four bank cases, wired to the sandbox demo's members (zhangwei, lina, chenjing, wangqiang).
CHANNELS = """\
default_welcome: t-welcome-default
channels:
  payroll-onboarding:
    name: 代发开卡
    managers: [zhangwei]
    tags: [渠道/代发开卡]
    welcome: t-welcome-payroll
  lobby-chengxi:
    name: 城西支行大堂
    managers: [zhangwei, lina]
    tags: [渠道/网点大堂]
  wealth-salon:
    name: 理财沙龙
    managers: [chenjing]
    skip_verify: false
    tags: [渠道/理财沙龙, 兴趣/理财]
    welcome: t-welcome-salon
  cc-campaign-q4:
    name: 信用卡四季度活动
    department: 2
    tags: [渠道/信用卡活动]
"""

# Caps are small so that tests reach them with a handful of joins.
GROUPS = """\
group_types:
  payroll:
    name: 代发福利群
    classify: {name: "代发"}
    member_cap: 500
    payday: 10
    welcome: t-group-welcome
    qr_pool: {size: 2}
  elderly:
    name: 银发兴趣群
    classify: {name: "银发|乐龄"}
    member_cap: 5
    welcome: t-group-welcome
    qr_pool: {size: 2}
  flash_sale:
    name: 快闪群
    classify: {name: "快闪|秒杀"}
    member_cap: 6
    lifetime_days: 7
  vip:
    name: 贵宾群
    classify: {owners: [chenjing]}
    member_cap: 50
  regional:
    name: 社区群
    classify: {chats: [wr-explicit-0001]}
    member_cap: 300
"""

MATERIALS = """\
- id: t-welcome-default
  type: text
  text: "{customer.name}您好，我是{manager.name}，很高兴为您服务。"
  approved: {by: 合规部-测试, at: 2025-01-01}
- id: t-welcome-payroll
  type: link
  text: "{customer.name}您好，代发开卡礼请查收。"
  link: {title: 代发开卡礼, url: "https://bank.example.com/gift", cover: "https://bank.example.com/gift.jpg"}
  approved: {by: 合规部-测试, at: 2025-01-01}
- id: t-welcome-salon
  type: text
  text: "感谢参加理财沙龙，我是{manager.name}。"
  approved: {by: 合规部-测试, at: 2025-01-01}
- id: t-welcome-crm
  type: text
  text: "尊敬的{crm.tier}客户您好。"
  approved: {by: 合规部-测试, at: 2025-01-01}
- id: t-group-welcome
  type: text
  channels: [group]
  text: "欢迎加入{group.name}！"
  approved: {by: 合规部-测试, at: 2025-01-01}
"""


def write_playbook(root: Path, *, channels: str = CHANNELS, groups: str = GROUPS,
                   materials: str = MATERIALS, tags: str = TAGS, policy: str = POLICY) -> tuple[Path, Path]:
    """A valid playbook under ``root``; returns (sop_dir, materials_dir)."""
    sop, mat = root / "sop", root / "materials"
    sop.mkdir(parents=True, exist_ok=True)
    mat.mkdir(parents=True, exist_ok=True)
    (sop / "policy.yaml").write_text(policy)
    (sop / "holidays.yaml").write_text((REPO / "sop" / "holidays.yaml").read_text())
    (sop / "tags.yaml").write_text(tags)
    (sop / "channels.yaml").write_text(textwrap.dedent(channels))
    (sop / "groups.yaml").write_text(textwrap.dedent(groups))
    (mat / "lifecycle.yaml").write_text(textwrap.dedent(materials))
    return sop, mat


# -- the shipped playbook minus its calendars and paths --------------------------------------------

#: The approval of the SOP test materials (append it to a material of your own, as in SOP_MATERIALS).
APPROVED = "approved: {by: 合规部-测试, at: 2026-01-01}"
#: Materials the SOP tests send (one of each kind), added to the shipped library as materials/tests.yaml.
SOP_MATERIALS = f"""\
- id: t-mini
  type: miniprogram
  channels: [group, private]
  text: 本月福利在小程序里领取。
  miniprogram: {{title: 测试福利, appid: wx3f2a9c7b1d4e6a80, page: pages/t/gift.html, cover: covers/topup.png}}
  {APPROVED}
- id: t-file
  type: file
  channels: [group, private]
  text: 本月存款利率表见附件。
  file: {{path: files/rates.pdf}}
  {APPROVED}
- id: t-link
  type: link
  channels: [group, private, manager]
  text: 本周理财精选，三分钟读完。
  link: {{title: 本周理财精选, desc: 稳健型产品一览, url: "https://wealth.example.com/weekly"}}
  interest_tags: [兴趣/理财]
  {APPROVED}
- id: t-text
  type: text
  channels: [group, private]
  text: 各位好，本周营业时间不变。
  {APPROVED}
- id: t-task
  type: text
  channels: [manager]
  text: 请回访这位客户，了解近期资金安排。
  {APPROVED}
"""
#: materials/files/rates.pdf, the file ``t-file`` attaches.
PDF = b"%PDF-1.4\n% scrm test rate sheet\n" + b"0" * 200


def write_shipped_playbook(root: Path, *, calendars: dict[str, str] | None = None,
                           paths: dict[str, str] | None = None, materials: str = SOP_MATERIALS,
                           edits: dict[str, dict[str, str]] | None = None) -> tuple[Path, Path]:
    """The shipped playbook minus its calendars, paths and campaigns, plus the given calendars and
    paths; (sop_dir, materials_dir).

    ``edits`` replaces text in copied files, e.g. ``{"sop/policy.yaml": {"tasks: 30": "tasks: 2"}}``.
    """
    sop, mat = root / "sop", root / "materials"
    shutil.copytree(REPO / "sop", sop)
    shutil.copytree(REPO / "materials", mat)
    for sub in ("calendars", "paths", "campaigns"):  # a shipped campaign would run in every test
        for f in (sop / sub).glob("*.yaml"):
            f.unlink()
    for name, text in (calendars or {}).items():
        (sop / "calendars" / f"{name}.yaml").write_text(text)
    for name, text in (paths or {}).items():
        (sop / "paths" / f"{name}.yaml").write_text(text)
    (mat / "files").mkdir(exist_ok=True)
    (mat / "files" / "rates.pdf").write_bytes(PDF)
    (mat / "tests.yaml").write_text(materials)
    for rel, replacements in (edits or {}).items():  # {"sop/policy.yaml": {old: new}}
        path = root / rel
        text = path.read_text()
        for old, new in replacements.items():
            assert old in text, (rel, old)
            text = text.replace(old, new)
        path.write_text(text)
    # The shipped sop/compliance/claims.yaml requires approvals bound to content: the test
    # materials are approved as written (who and when kept), as `scrm materials approve` would.
    stamp_approvals(mat / "tests.yaml")
    return sop, mat


def stamp_approvals(path: Path) -> None:
    """Add the content hash to every hash-less ``approved:`` in the materials file ``path``
    (keeping its by and at); items that do not validate are left as they are."""
    source, _ = read_yaml(path, path.name)
    items = source.data if source is not None and isinstance(source.data, list) else []
    stamps = {}
    for i, item in enumerate(items):
        try:
            material = Material.model_validate(item)
        except ValidationError:
            continue
        if material.approved is not None and material.approved.hash is None:
            stamps[i] = (material.approved.by, material.approved.at, material.content_hash)
    if stamps:
        tmp = path.with_name(f".{path.name}.stamping")
        tmp.write_text(rewrite_approvals(path, stamps), encoding="utf-8")
        os.replace(tmp, path)
