"""The chaos run's playbook: the stack tests' small playbook (``tests/support/playbooks.py``:
tags, welcome materials) with four channels that all tag, group types with small caps, and quiet
hours away from the run.

Quiet hours are a required one-minute window placed twelve hours away from the run, so no
manager notice raised during the run is held back until morning (it would stay ``pending``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from tests.support.playbooks import write_playbook as support_playbook

TZ = ZoneInfo("Asia/Shanghai")


@dataclass(frozen=True)
class Channel:
    """A channel QR code (WeCom's ``state``): its managers (the demo's members) and the tags it sets."""

    name: str
    managers: tuple[str, ...]
    tags: tuple[str, ...]
    welcome: str | None = None
    department: int | None = None  # the QR code of a department (managers: its members)


# Wired to the sandbox demo's members (zhangwei, lina, chenjing, wangqiang); every channel tags.
CHANNELS = {
    "payroll-onboarding": Channel("代发开卡", ("zhangwei",), ("渠道/代发开卡",), "t-welcome-payroll"),
    "lobby-chengxi": Channel("城西支行大堂", ("zhangwei", "lina"), ("渠道/网点大堂",)),
    "wealth-salon": Channel("理财沙龙", ("chenjing",), ("渠道/理财沙龙", "兴趣/理财"), "t-welcome-salon"),
    "cc-campaign-q4": Channel("信用卡四季度活动", ("zhangwei", "lina", "wangqiang"), ("渠道/信用卡活动",),
                              department=2),
}


def channels_yaml() -> str:
    lines = ["default_welcome: t-welcome-default", "channels:"]
    for state, c in CHANNELS.items():
        lines += [f"  {state}:", f"    name: {c.name}"]
        lines.append(f"    department: {c.department}" if c.department else f"    managers: [{', '.join(c.managers)}]")
        lines.append(f"    tags: [{', '.join(c.tags)}]")
        if c.welcome:
            lines.append(f"    welcome: {c.welcome}")
    return "\n".join(lines) + "\n"


# Small caps: a few joins take the flash and the elderly groups over them (one notice each).
FLASH_CAP = 6
ELDERLY_CAP = 5
GROUPS = f"""\
group_types:
  payroll:
    name: 代发福利群
    classify: {{name: "代发"}}
    member_cap: 500
    payday: 10
    welcome: t-group-welcome
  elderly:
    name: 银发兴趣群
    classify: {{name: "银发|乐龄"}}
    member_cap: {ELDERLY_CAP}
    welcome: t-group-welcome
  flash_sale:
    name: 快闪群
    classify: {{name: "快闪|秒杀"}}
    member_cap: {FLASH_CAP}
    lifetime_days: 7
  vip:
    name: 贵宾群
    classify: {{owners: [chenjing]}}
    member_cap: 50
"""

def policy(now: datetime) -> str:
    """The contact policy, its quiet hours a minute twelve hours from ``now``."""
    start = (now.astimezone(TZ) + timedelta(hours=12)).replace(second=0, microsecond=0)
    end = start + timedelta(minutes=1)
    return (f'timezone: Asia/Shanghai\nquiet_hours: "{start:%H:%M}-{end:%H:%M}"\n'
            "opt_out_tag: 偏好/免打扰\nrisk_disclosure: \"理财非存款，产品有风险，投资须谨慎。\"\n")


def write_playbook(root: Path, now: datetime) -> tuple[Path, Path]:
    """The playbook under ``root``; returns (sop_dir, materials_dir)."""
    return support_playbook(root, channels=channels_yaml(), groups=GROUPS, policy=policy(now))
