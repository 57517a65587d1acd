"""What the sidebar says, in one place: labels of timeline entries, task buttons, relation
sources, and the one-line refusals."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

BUTTON_LABELS = {"done": "完成", "snooze": "稍后提醒", "not_relevant": "不相关"}
STATUS_LABELS = {"open": "待处理", "escalated": "已升级给团队长", "done": "已完成", "snoozed": "已推迟",
                 "not_relevant": "已标记不相关"}

# WeCom's follow_user.add_way (how the relation began) when no channel QR code (state) says more.
ADD_WAYS = {0: "未知来源", 1: "扫描二维码", 2: "搜索手机号", 3: "名片分享", 4: "群聊", 5: "手机通讯录",
            6: "微信联系人", 8: "第三方应用自动添加", 9: "搜索邮箱", 10: "视频号添加", 11: "日程参与人",
            12: "会议参与人", 13: "微信好友", 14: "智慧硬件专属客服", 15: "上门服务客服", 16: "获客链接",
            17: "定制开发", 18: "需求回复", 201: "内部成员共享", 202: "管理员/负责人分配"}

NOT_SIGNED_IN = "not signed in; open the toolbar again"
NOT_YOURS = "只有这位客户的客户经理（或其团队长）可以查看"
NOT_YOUR_GROUP = "只有群主或群里的本行员工可以查看这个客户群"
BAD_ID = "not a WeCom id (letters, digits, _ and - only, at most 128)"
BAD_EDIT_ID = "edit must be the tap's id (letters, digits, _ and - only, at most 64)"

Detail = Mapping[str, Any]
Names = Mapping[str, str]


def _chat(detail: Detail, names: Names) -> str:
    chat = str(detail.get("chat_id", ""))
    return names.get(chat, "客户群")


def _group_change(detail: Detail, names: Names) -> str:
    what = detail.get("update_detail")
    if what == "add_member":
        return f"加入了{_chat(detail, names)}"
    if what == "del_member":
        return f"退出了{_chat(detail, names)}"
    return ""


def _tags_line(detail: Detail, names: Names) -> str:
    changes = [f"+{n}" for n in detail.get("added") or []] + [f"-{n}" for n in detail.get("removed") or []]
    return f"{_who('manager')(detail, names)}修改了标签：{'、'.join(changes)}" if changes else ""


def _who(key: str) -> Callable[[Detail, Names], str]:
    return lambda d, n: n.get(str(d.get(key, "")), str(d.get(key, "")))


# Timeline kind → a line for people; kinds not listed are not shown (the panel is short: what a
# manager acts on — sends, opens, group joins, relation changes, transfers).
TIMELINE: dict[str, Callable[[Detail, Names], str]] = {
    "external_contact.add": lambda d, n: f"添加了客户经理{_who('user_id')(d, n)}",
    "external_contact.add_half": lambda d, n: f"添加了客户经理{_who('user_id')(d, n)}（待通过）",
    "external_contact.del_follow_user": lambda d, n: f"删除了客户经理{_who('user_id')(d, n)}",
    "external_contact.del": lambda d, n: f"客户经理{_who('user_id')(d, n)}删除了客户",
    "external_chat.update": _group_change,
    "radar.click": lambda d, n: f"打开了链接：{n.get('material:' + str(d.get('material', '')), d.get('material', ''))}",
    "sidebar.send": lambda d, n: f"{_who('manager')(d, n)}在聊天中发送：{d.get('title', '')}",
    "sidebar.tags": _tags_line,
    "succession.transferred": lambda d, n: f"由{_who('from')(d, n)}转给{_who('to')(d, n)}",
    "welcome.failed": lambda d, n: "欢迎语未能发出",
}


def timeline_line(kind: str, detail: Detail, names: Names) -> str:
    """The line for one timeline entry ('' = not shown)."""
    line = TIMELINE.get(kind)
    return line(detail, names) if line is not None else ""
