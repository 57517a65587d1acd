"""Every text the groups feature sends to client managers, in one place (ARCHITECTURE.md §9.10).

Managers read these in the WeCom app, so they are short, Chinese, and say what to do next.
"""

from __future__ import annotations

from collections.abc import Sequence


def _names(names: Sequence[str], limit: int = 5) -> str:
    shown = "、".join(names[:limit])
    return shown + (f" 等{len(names)}人" if len(names) > limit else "")


def flash_group_joined(group: str, names: Sequence[str], others: int) -> str:
    """New members in an event group (活动快闪群): the owner follows up while the event runs.

    ``names`` are the joiners we know as customers, ``others`` how many we do not know yet.
    """
    who = _names(names) if names else ""
    if others:
        who += f"{'及另外' if names else ''}{others}位新成员"
    return f"【快闪群任务】「{group}」新加入 {who}。请在群内发送本次活动说明，并在活动期内跟进。"


def group_over_cap(group: str, type_name: str, count: int, cap: int) -> str:
    """A group went over its type's member cap."""
    return (f"【群人数超限】「{group}」现有 {count} 人，超过{type_name}的上限 {cap} 人。"
            f"请把新成员引导到同类型的新群，必要时新建一个群。")


def pool_needs_group(type_name: str, cap: int) -> str:
    """The QR pool of a group type has no group with room left."""
    return (f"【需要新建群】{type_name}的入群二维码已没有可加入的群（均已达 {cap} 人）。"
            f"请新建一个{type_name}，系统会自动把它加入入群二维码。")


def flash_group_expired(group: str, days: int) -> str:
    """An event group (活动快闪群) reached the end of its lifetime."""
    return (f"【快闪群到期】「{group}」已建群 {days} 天，活动期结束。"
            f"请在群内发送结束语后解散该群，活跃的群也可以转为兴趣群。")
