"""The daily compliance notice: tell the playbook's ops contacts which materials in use are
expired or unapproved (their steps are being skipped) and which expire within 30 days.

One app message per contact and day (the outbox key makes a replayed or late job send nothing
twice); nothing is sent on a day with nothing to say.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy.ext.asyncio import AsyncSession

from scrm.kernel.config import Settings
from scrm.kernel.notify import tell_member
from scrm.kernel.outbox import Outbox
from scrm.playbook import MaterialFinding, Playbook, material_findings

from .events import SopComplianceNotice

# An app message's text is capped by WeCom at 2048 bytes; say how many more there are instead.
MAX_LINES = 12


def notice_text(day: date, findings: list[MaterialFinding]) -> str:
    blocked = [f for f in findings if f.blocked]
    expiring = [f for f in findings if not f.blocked]
    lines = [f"【素材合规提醒】{day:%Y-%m-%d}"]
    if blocked:
        lines.append(f"已停发 {len(blocked)} 个素材（使用它们的步骤被跳过）：")
        lines += [f"· {f.problem}（{len(f.uses)} 处使用）" for f in blocked]
    if expiring:
        lines.append(f"30 天内到期 {len(expiring)} 个素材：")
        lines += [f"· {f.problem}（{len(f.uses)} 处使用）" for f in expiring]
    if len(lines) > MAX_LINES:
        lines = [*lines[:MAX_LINES], f"……另有 {len(lines) - MAX_LINES} 行，运行 scrm sop validate 查看全部"]
    lines.append("请更新 materials/ 中的 approved / valid_until 后提交。")
    return "\n".join(lines)


async def send_notice(session: AsyncSession, outbox: Outbox, settings: Settings, playbook: Playbook,
                      day: date) -> int:
    """Queue the day's notice to every ops contact; how many messages were queued."""
    findings = material_findings(playbook, day)
    if not findings or not playbook.policy.ops_contacts:
        return 0
    text = notice_text(day, findings)
    for userid in playbook.policy.ops_contacts:
        await tell_member(session, outbox, settings, key=f"{SopComplianceNotice.KIND}:{day}:{userid}", userid=userid,
                          text=text)
    return len(playbook.policy.ops_contacts)
