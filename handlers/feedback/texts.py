"""What customers and managers read (Chinese text in one place)."""

from __future__ import annotations

NOT_FOUND = "链接无效，请使用客户经理发给您的原始链接。"
EXPIRED = "该问卷已过期，感谢您的关注。"
ALREADY = "您已提交过本次问卷，感谢您的反馈。"
NO_SCORE = "请先选择一个分数。"
FORM_EXPIRED = "页面已失效，请刷新后重新提交。"
LOW = {"nps": "完全不可能", "csat": "非常不满意"}
HIGH = {"nps": "非常可能", "csat": "非常满意"}
SUBMIT = "提交"
CONTINUE = "了解更多"
CATEGORY = {"promoter": "推荐者", "passive": "中立者", "detractor": "贬损者"}


def bad_score(low: int, high: int) -> str:
    return f"分数须为 {low} 到 {high} 之间的整数。"


def long_comment(limit: int) -> str:
    return f"建议最多 {limit} 字。"


def alert_card(customer: str, kind: str, score: int, comment: str, question: str) -> tuple[str, str]:
    """The manager's card on a low score: title, and what the customer said."""
    scale = "0–10" if kind == "nps" else "1–5"
    lines = [f"客户 {customer} 在满意度问卷中打了 {score} 分（{scale}）。", f"问题：{question}"]
    lines.append(f"客户留言：{comment}" if comment else "客户未留言。")
    lines.append("请在 2 个工作日内联系客户，了解原因并跟进处理。")
    return f"客户反馈预警：{score} 分", "\n".join(lines)
