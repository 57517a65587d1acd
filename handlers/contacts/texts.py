"""Every text the contacts feature sends to client managers, in one place (ARCHITECTURE.md §9.10).

Managers read these in the WeCom app, so they are short, Chinese, and say what to do next.
"""

from __future__ import annotations


def churn_notice(customer: str, channel: str | None) -> str:
    """The customer deleted the manager (del_follow_user)."""
    source = f"（来源渠道：{channel}）" if channel else ""
    return (f"【客户流失提醒】客户「{customer}」已将您从好友中删除{source}。"
            "建议回顾最近的沟通记录，必要时请团队长协助回访。")


# A welcome names its manager; when the staff directory does not know the member yet (not synced,
# or an HR file without them), the customer reads this rather than an internal userid.
UNNAMED_MANAGER = "客户经理"


# Why a queued welcome did not go out in time (the outbox failed it: its code had expired).
WINDOW_MISSED = "系统未能在欢迎码有效的20秒内发出"


def welcome_failed(customer: str, reason: str) -> str:
    """The automatic welcome could not be sent: the manager greets by hand."""
    return f"【请手动问候】新客户「{customer}」的欢迎语未能自动发送（{reason}）。请尽快在企业微信中主动问候。"
