"""企业群发 rules: a template becomes one task per sender; sending happens on confirmation.

WeCom: "调用该接口并不会直接发送消息给客户/客户群，需要成员确认后才会执行发送". On confirmation
each target is checked again: a customer no longer a friend gets status 2, and one who has
already received as many mass messages this month as the month has days gets status 3
(the default 群发规则: 每位客户/每个客户群每月最多可接收条数为当月天数).
"""

from __future__ import annotations

import calendar
from datetime import UTC, datetime, timedelta, timezone
from typing import TYPE_CHECKING

from scrm.sandbox.errors import invalid
from scrm.sandbox.records import Delivery, MassTask, MsgTemplate, SendResult

if TYPE_CHECKING:
    from scrm.sandbox.state import SandboxState

# WeCom counts calendar months in China time (no DST, so a fixed offset is exact).
CHINA = timezone(timedelta(hours=8), "Asia/Shanghai")


def month_of(at: float) -> tuple[int, int]:
    moment = datetime.fromtimestamp(at, UTC).astimezone(CHINA)
    return moment.year, moment.month


def monthly_cap(at: float) -> int:
    """Mass messages one customer or group may receive in the month containing ``at``."""
    year, month = month_of(at)
    return calendar.monthrange(year, month)[1]


def received_this_month(state: SandboxState, target: str, now: float) -> int:
    month = month_of(now)
    return sum(1 for d in state.delivered_messages(kind="mass", to=target) if month_of(d.at) == month)


def add_template(
    state: SandboxState,
    msgid: str,
    chat_type: str,
    now: float,
    *,
    senders_targets: dict[str, list[str]],
    text: dict[str, object],
    attachments: list[dict[str, object]],
) -> MsgTemplate:
    """Store a template with a pending task per sender and a pending result per target."""
    if chat_type not in ("single", "group"):
        raise invalid("chat_type must be single or group")
    template = MsgTemplate(
        msgid=msgid,
        chat_type="single" if chat_type == "single" else "group",
        create_time=now,
        text=dict(text),
        attachments=list(attachments),
    )
    for sender, targets in senders_targets.items():
        template.tasks[sender] = MassTask(userid=sender)
        template.results.extend(SendResult(userid=sender, target=t) for t in targets)
    state.msg_templates[msgid] = template
    return template


def confirm_task(state: SandboxState, msgid: str, userid: str, now: float) -> list[SendResult]:
    """The sender presses 发送: deliver to each of their targets, applying the receive cap.

    Returns the results that changed. A cancelled or already confirmed task sends nothing.
    Raises KeyError for an unknown msgid or a member without a task (a test mistake).
    """
    template = state.msg_templates[msgid]
    task = template.tasks[userid]
    if template.cancelled or task.status == 2:
        return []
    changed: list[SendResult] = []
    cap = monthly_cap(now)
    for result in template.results:
        if result.userid != userid or result.status != 0:
            continue
        if template.chat_type == "single":
            reachable = state.follow(userid, result.target) is not None
        else:
            chat = state.groups.get(result.target)
            reachable = chat is not None and not chat.dismissed
        if not reachable:
            result.status = 2
        elif received_this_month(state, result.target, now) >= cap:
            result.status = 3
        else:
            result.status = 1
            result.send_time = now
            state.deliveries.append(
                Delivery(
                    kind="mass",
                    sender=userid,
                    to=result.target,
                    msgid=msgid,
                    msgtype="mass",
                    content={"text": template.text, "attachments": template.attachments},
                    at=now,
                )
            )
        changed.append(result)
    task.status = 2
    task.send_time = now
    return changed
