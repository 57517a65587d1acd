"""What the referral feature says to people (Chinese UI text in one place)."""

from __future__ import annotations

ROLE_LABELS = {"referrer": "推荐人", "friend": "受邀好友"}
FLAG_LABELS = {"unknown_code": "未知推荐码", "second_code": "重复推荐（好友已有推荐人）", "self": "自我推荐",
               "self_unionid": "自我推荐（同一微信）", "self_crm": "自我推荐（同一客户号）", "loop": "循环推荐",
               "existing": "非新客（已是客户）", "burst": "短时集中推荐", "over_cap": "超出月度奖励上限"}
STATUS_LABELS = {"pending": "待转化", "rewarded": "已奖励", "capped": "已转化（推荐人超上限）",
                 "late": "窗口期后转化", "rejected": "已拒绝（欺诈）"}


def gift_card(role: str, referrer: str, friend: str, gift: str) -> tuple[str, str]:
    """The manager's card to hand a referral gift over: title and text."""
    if role == "referrer":
        text = f"{referrer} 推荐的好友 {friend} 已完成转化，请将推荐礼品「{gift}」交给 {referrer}，并表示感谢。"
        return "老带新：推荐人礼品", text
    text = f"{friend}（由 {referrer} 推荐）已完成转化，请将新客礼品「{gift}」交给 {friend}。"
    return "老带新：新客礼品", text
