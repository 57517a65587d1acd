"""A small valid playbook written to a temporary folder, with any file replaceable.

Tests about error messages replace one file with a known text so that line numbers in the
expected ``file:line: key.path: message`` strings are under the test's control.
"""

from __future__ import annotations

import textwrap
from datetime import date
from pathlib import Path

from scrm.playbook import Playbook, PlaybookError, load_playbook

REPO = Path(__file__).resolve().parents[2]
TODAY = date(2026, 6, 1)

BASE: dict[str, str] = {
    "sop/policy.yaml": """\
        timezone: Asia/Shanghai
        quiet_hours: "21:00-08:30"
        opt_out_tag: 偏好/免打扰
        risk_disclosure: 理财非存款，产品有风险，投资须谨慎。
        """,
    "sop/tags.yaml": """\
        groups:
          产品持有: {owner: crm, from: crm.products, map: {payroll: 代发, wealth: 理财}}
          渠道: {owner: manager, tags: [代发开卡]}
          偏好: {owner: manager, tags: [免打扰]}
          兴趣: {owner: manager, tags: [理财]}
        """,
    "materials/base.yaml": """\
        - id: hello
          type: text
          text: 您好，我是{manager.name}。
          approved: {by: 合规-王, at: 2026-01-05}
        - id: group-hello
          type: text
          channels: [group]
          text: 欢迎加入{group.name}
          approved: {by: 合规-王, at: 2026-01-05}
        """,
    "sop/channels.yaml": """\
        default_welcome: hello
        channels:
          payroll-card:
            name: 代发开卡
            managers: [zhangwei]
            tags: [渠道/代发开卡]
        """,
    "sop/groups.yaml": """\
        group_types:
          payroll:
            name: 代发群
            classify: {name: 代发}
            payday: 10
        """,
    "sop/calendars/payroll.yaml": """\
        calendar: payroll-groups
        group_type: payroll
        steps:
          - {day: 0, at: "10:00", send: group-hello}
          - {day: 14, at: "12:10", send: group-hello}
        recurring:
          - {every: month, on: "payday + 1 workday", at: "12:10", send: group-hello}
        """,
    "sop/paths/wealth.yaml": """\
        path: payroll-wealth
        name: 代发+理财
        when: {all: [产品持有/代发, 产品持有/理财]}
        steps:
          - {on: "payday + 1 workday", at: "10:00", send: hello}
        """,
    "sop/reminders.yaml": """\
        reminders:
          maturity:
            on: maturity
            name: 到期
            days_before: 7
            card: "{customer.name} 的产品将到期"
            script: hello
        """,
}


def make_playbook(root: Path, **files: str | None) -> tuple[Path, Path]:
    """Write the base playbook under ``root``; ``files`` replace (or with None, drop) files.

    Keyword names use ``__`` for ``/`` and ``_yaml`` for ``.yaml``:
    ``sop__calendars__payroll_yaml="..."``.
    """
    contents = dict(BASE)
    contents["sop/holidays.yaml"] = (REPO / "sop" / "holidays.yaml").read_text(encoding="utf-8")
    for key, text in files.items():
        name = key.replace("__", "/").removesuffix("_yaml") + ".yaml"
        if text is None:
            contents.pop(name, None)
        else:
            contents[name] = text
    for name, text in contents.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    (root / "materials").mkdir(exist_ok=True)
    return root / "sop", root / "materials"


def load(root: Path, today: date = TODAY, **files: str | None) -> Playbook:
    return load_playbook(*make_playbook(root, **files), today=today)


def errors(root: Path, today: date = TODAY, **files: str | None) -> list[str]:
    """The error lines for the base playbook with ``files`` replaced ([] when it loads)."""
    try:
        load(root, today, **files)
    except PlaybookError as exc:
        return [str(e) for e in exc.errors]
    return []
