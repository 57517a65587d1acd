"""企业群发 APIs: add_msg_template and its follow-ups (list, task, result, remind, cancel).

add_msg_template only creates tasks (one per sender); messages go out when the sender
confirms (``SandboxState.confirm_msg_task`` / ``CallbackDriver.confirm_msg_task``).
Without ``sender``, a customer is assigned to its oldest follow member. Customers the chosen
sender does not follow (or unknown ids) go to ``fail_list``; for group sends, chats that are
unknown or not owned by the sender go there too.
"""

from __future__ import annotations

from scrm.sandbox.content import check_attachments, check_text
from scrm.sandbox.errors import invalid
from scrm.sandbox.masssend import add_template
from scrm.sandbox.params import Json, dict_items, get_int, get_list, get_obj, get_str, get_str_list, page
from scrm.sandbox.records import MsgTemplate
from scrm.sandbox.routing import Call, RouteTable
from scrm.sandbox.state import SandboxState

router = RouteTable()
DAY = 86400.0


def _tag_groups(body: Json) -> list[set[str]]:
    groups = dict_items(get_list(get_obj(body, "tag_filter"), "group_list"), "tag_filter.group_list")
    return [set(get_str_list(g, "tag_list")) for g in groups if g.get("tag_list")]


def _single_targets(state: SandboxState, body: Json) -> tuple[dict[str, list[str]], list[str]]:
    ext_ids = list(dict.fromkeys(get_str_list(body, "external_userid", max_items=10000)))
    sender = get_str(body, "sender")
    if not ext_ids and not sender:
        raise invalid("external_userid and sender cannot both be empty")
    tag_groups = _tag_groups(body)
    targets: dict[str, list[str]] = {}
    fail: list[str] = []
    if sender:
        state.require_member(sender, "sender")
        candidates = ext_ids or [f.external_userid for f in state.follows_of_member(sender)]
        pairs = [(sender, ext) if state.follow(sender, ext) else ("", ext) for ext in candidates]
    else:
        pairs = []
        for ext in ext_ids:
            follows = state.follows_of_customer(ext)
            pairs.append((follows[0].userid if follows else "", ext))
    for userid, ext in pairs:
        relation = state.follow(userid, ext) if userid else None
        if relation is None:
            fail.append(ext)
        elif all(set(relation.tag_ids) & group for group in tag_groups):
            targets.setdefault(userid, []).append(ext)
    return targets, fail


def _group_targets(state: SandboxState, body: Json) -> tuple[dict[str, list[str]], list[str]]:
    sender = get_str(body, "sender")
    if not sender:
        raise invalid("sender is required for chat_type group")
    state.require_member(sender, "sender")
    chat_ids = get_str_list(body, "chat_id_list", max_items=2000)
    owned = [c.chat_id for c in state.groups.values() if c.owner == sender and not c.dismissed]
    chosen = [c for c in chat_ids if c in owned] if chat_ids else owned
    fail = [c for c in chat_ids if c not in owned]
    return ({sender: chosen} if chosen else {}), fail


@router.post("externalcontact/add_msg_template")
def add_msg_template(call: Call) -> Json:
    """Create a mass-send task per sender; nothing is delivered until confirmation."""
    state, body = call.state, call.body
    chat_type = get_str(body, "chat_type") or "single"
    if chat_type not in ("single", "group"):
        raise invalid("chat_type must be single or group")
    text = check_text(body, max_bytes=4000)
    attachments = check_attachments(state, get_list(body, "attachments"), call.now)
    if not text.get("content") and not attachments:
        raise invalid("text.content or attachments is required")
    targets, fail = _single_targets(state, body) if chat_type == "single" else _group_targets(state, body)
    if not targets:
        raise invalid("no valid recipient: every target is unknown or not reachable by the sender")
    msgid = state.new_id("msgsb")
    add_template(state, msgid, chat_type, call.now, senders_targets=targets, text=text, attachments=attachments)
    return {"fail_list": fail, "msgid": msgid}


def _require_template(state: SandboxState, body: Json) -> MsgTemplate:
    msgid = get_str(body, "msgid", required=True)
    template = state.msg_templates.get(msgid)
    if template is None:
        raise invalid(f"msgid {msgid!r} not found")
    return template


@router.post("externalcontact/get_groupmsg_list_v2")
def get_groupmsg_list_v2(call: Call) -> Json:
    """Templates in [start_time, end_time] (span ≤ 1 month). API-made ones have create_type 0
    and no creator, so ``creator`` or ``filter_type`` 1 select none of them."""
    state, body = call.state, call.body
    chat_type = get_str(body, "chat_type", required=True)
    if chat_type not in ("single", "group"):
        raise invalid("chat_type must be single or group")
    start = get_int(body, "start_time", 0, lo=1)
    end = get_int(body, "end_time", 0, lo=1)
    if end < start or end - start > 31 * DAY:
        raise invalid("end_time must follow start_time within one month")
    creator = get_str(body, "creator")
    filter_type = get_int(body, "filter_type", 2, lo=0, hi=2)
    limit = get_int(body, "limit", 50, lo=1, hi=100)
    rows = [
        t
        for t in state.msg_templates.values()
        if t.chat_type == chat_type
        and start <= t.create_time <= end + 0.999
        and (not creator or t.creator == creator)
        and filter_type in (0, 2)
    ]
    chunk, next_cursor = page(rows, get_str(body, "cursor"), limit)
    items = [
        {
            "msgid": t.msgid,
            "create_time": str(int(t.create_time)),
            "create_type": 0,
            "text": t.text,
            "attachments": t.attachments,
        }
        for t in chunk
    ]
    return {"group_msg_list": items, "next_cursor": next_cursor}


@router.post("externalcontact/get_groupmsg_task")
def get_groupmsg_task(call: Call) -> Json:
    """Per-sender status: 0 未发送, 2 已发送 (send_time only once sent)."""
    template = _require_template(call.state, call.body)
    limit = get_int(call.body, "limit", 500, lo=1, hi=1000)
    chunk, next_cursor = page(list(template.tasks.values()), get_str(call.body, "cursor"), limit)
    items: list[Json] = []
    for task in chunk:
        item: Json = {"userid": task.userid, "status": task.status}
        if task.status == 2:
            item["send_time"] = int(task.send_time)
        items.append(item)
    return {"task_list": items, "next_cursor": next_cursor}


@router.post("externalcontact/get_groupmsg_send_result")
def get_groupmsg_send_result(call: Call) -> Json:
    """Per-target results of one sender: 0 未发送, 1 已发送, 2 非好友, 3 超过接收上限.
    Group sends list sent records only, as WeCom does."""
    template = _require_template(call.state, call.body)
    userid = get_str(call.body, "userid", required=True)
    limit = get_int(call.body, "limit", 500, lo=1, hi=1000)
    rows = [r for r in template.results if r.userid == userid and (template.chat_type == "single" or r.status == 1)]
    chunk, next_cursor = page(rows, get_str(call.body, "cursor"), limit)
    key = "external_userid" if template.chat_type == "single" else "chat_id"
    items: list[Json] = []
    for r in chunk:
        item: Json = {key: r.target, "userid": r.userid, "status": r.status}
        if r.status == 1:
            item["send_time"] = int(r.send_time)
        items.append(item)
    return {"send_list": items, "next_cursor": next_cursor}


@router.post("externalcontact/remind_groupmsg_send")
def remind_groupmsg_send(call: Call) -> Json:
    """Remind senders again: at most 3 times per 24 h per template (else 40058)."""
    template = _require_template(call.state, call.body)
    if template.cancelled:
        raise invalid("the mass send was cancelled")
    recent = [t for t in template.reminds if call.now - t < DAY]
    if len(recent) >= call.state.limits.reminds_per_day:
        raise invalid(f"at most {call.state.limits.reminds_per_day} reminders per 24 hours")
    template.reminds = [*recent, call.now]
    return {}


@router.post("externalcontact/cancel_groupmsg_send")
def cancel_groupmsg_send(call: Call) -> Json:
    """Stop the unsent part; what was already delivered stays delivered."""
    _require_template(call.state, call.body).cancelled = True
    return {}
