"""What the membership feature says to people (Chinese UI text in one place)."""

from __future__ import annotations

from .rules import Level


def upgrade_card(customer: str, before: str, level: Level) -> tuple[str, str]:
    """The manager's card on an upgrade: title, and the level's rights to tell the customer of."""
    lines = [f"{customer} 的会员等级由「{before}」升至「{level.label}」。"]
    if level.general:
        lines.append("通用权益：" + "、".join(level.general))
    if level.privileges:
        lines.append("专属特权：" + "、".join(level.privileges))
    lines.append("请向客户致贺，并介绍新等级的权益。")
    return f"客户升级：{level.label}", "\n".join(lines)


def upgrade_message(customer: str, level: Level) -> str:
    """What the customer reads on an upgrade, sent by their manager: the new level and its rights."""
    lines = [f"{customer}，您好！恭喜您成为我行「{level.label}」。"]
    if level.general:
        lines.append("您可享受的通用权益：" + "、".join(level.general) + "。")
    if level.privileges:
        lines.append(f"「{level.label}」专属特权：" + "、".join(level.privileges) + "。")
    lines.append("权益的具体使用方式，欢迎随时问我。感谢您一直以来的信任与支持！")
    return "\n".join(lines)
