"""App messages (message/send, message/update_template_card) and media upload.

message/send semantics modelled on 90236:
- recipients: ``touser`` ("a|b" or "@all", ≤1000), ``toparty`` (≤100); the sandbox has no
  member tags, so every ``totag`` is invalid; all recipients invalid → 81013;
- per member: 30 deliveries/min and 1000/h; beyond that WeCom silently drops, so the reply is
  still ok and the drop is recorded (``SandboxState.dropped_messages(reason=...)``);
- ``enable_duplicate_check``: the same content to the same member within
  ``duplicate_check_interval`` (default 1800 s, ≤4 h) is not delivered again;
- text/markdown over 2048 bytes and textcard title/description over 128/512 bytes are
  truncated, as WeCom does, rather than rejected;
- interactive template cards return a ``response_code`` (72 h, single use).
"""

from __future__ import annotations

import json
from collections import deque

from scrm.sandbox import errors
from scrm.sandbox.errors import ApiError, invalid
from scrm.sandbox.params import Json, dict_items, get_int, get_list, get_obj, get_str, get_str_list
from scrm.sandbox.records import Card, Delivery, Media
from scrm.sandbox.routing import Call, RouteTable
from scrm.sandbox.state import SandboxState

router = RouteTable()
CARD_TYPES = ("text_notice", "news_notice", "button_interaction", "vote_interaction", "multiple_interaction")
INTERACTIVE = CARD_TYPES[2:]
MEDIA_LIMITS = {"image": 10 * 2**20, "voice": 2 * 2**20, "video": 10 * 2**20, "file": 20 * 2**20}


def _truncate(text: str, max_bytes: int) -> str:
    return text.encode("utf-8")[:max_bytes].decode("utf-8", errors="ignore")


def _check_agent(call: Call) -> None:
    if get_int(call.body, "agentid", 0) != call.config.agent_id:
        raise ApiError(errors.INVALID_AGENTID, f"agentid must be {call.config.agent_id}")


def _payload(call: Call, msgtype: str) -> Json:
    """The validated (and, where WeCom truncates, truncated) content object."""
    body = call.body
    data = dict(get_obj(body, msgtype, required=True))
    if msgtype in ("text", "markdown"):
        data["content"] = _truncate(get_str(data, "content", required=True), 2048)
    elif msgtype == "textcard":
        data["title"] = _truncate(get_str(data, "title", required=True), 128)
        data["description"] = _truncate(get_str(data, "description", required=True), 512)
        get_str(data, "url", required=True, max_bytes=2048)
        get_str(data, "btntxt", max_chars=4)
    elif msgtype == "template_card":
        card_type = get_str(data, "card_type", required=True)
        if card_type not in CARD_TYPES:
            raise invalid(f"template_card.card_type must be one of {', '.join(CARD_TYPES)}")
        task_id = get_str(data, "task_id", required=card_type in INTERACTIVE, max_bytes=128)
        if task_id and task_id in call.state.cards:
            raise invalid(f"template_card.task_id {task_id!r} was already used")
        if card_type == "button_interaction":
            buttons = dict_items(get_list(data, "button_list", max_items=6), "template_card.button_list")
            if not buttons:
                raise invalid("template_card.button_list is required (1 to 6 buttons)")
            for button in buttons:
                get_str(button, "text", required=True)
                get_str(button, "key", required=True, max_bytes=1024)
    else:
        raise invalid(f"msgtype {msgtype!r} is not supported by the sandbox")
    return data


def _recipients(call: Call) -> tuple[list[str], Json]:
    state, body = call.state, call.body
    touser, toparty, totag = get_str(body, "touser"), get_str(body, "toparty"), get_str(body, "totag")
    if not touser and not toparty and not totag:
        raise invalid("touser, toparty or totag is required")
    users: list[str] = []
    bad_users: list[str] = []
    if touser == "@all":
        users = [m.userid for m in state.members.values() if m.status == "active"]
    elif touser:
        wanted = touser.split("|")
        if len(wanted) > 1000:
            raise invalid("touser exceeds 1000 members")
        users = [u for u in wanted if state.active_member(u) is not None]
        bad_users = [u for u in wanted if state.active_member(u) is None]
    parties = [p for p in toparty.split("|") if p] if toparty else []
    if len(parties) > 100:
        raise invalid("toparty exceeds 100 departments")
    known = {d for m in state.members.values() if m.status == "active" for d in m.department}
    bad_parties = [p for p in parties if not p.isdigit() or int(p) not in known]
    good = {int(p) for p in parties if p not in bad_parties}
    users += [m.userid for m in state.members.values() if m.status == "active" and good & set(m.department)]
    invalid_fields: Json = {
        "invaliduser": "|".join(bad_users),
        "invalidparty": "|".join(bad_parties),
        "invalidtag": totag,  # no member tags exist in the sandbox
        "unlicenseduser": "",
    }
    return list(dict.fromkeys(users)), invalid_fields


def _drop_reason(state: SandboxState, userid: str, key: str, now: float, dup_window: float | None) -> str:
    if dup_window is not None:
        last = state.app_msg_last_seen.get((userid, key))
        if last is not None and now - last < dup_window:
            return "duplicate"
    times = state.app_msg_times.setdefault(userid, deque())
    while times and now - times[0] >= 3600:
        times.popleft()
    if sum(1 for t in times if now - t < 60) >= state.limits.member_msgs_per_minute:
        return "member_per_minute"
    if len(times) >= state.limits.member_msgs_per_hour:
        return "member_per_hour"
    return ""


@router.post("message/send")
def message_send(call: Call) -> Json:
    """Send an app message to members; see the module docstring for the rules."""
    state, body = call.state, call.body
    _check_agent(call)
    msgtype = get_str(body, "msgtype", required=True)
    content = _payload(call, msgtype)
    check = get_int(body, "enable_duplicate_check", 0, lo=0, hi=1) == 1
    interval = get_int(body, "duplicate_check_interval", 1800, lo=1, hi=4 * 3600)
    users, invalid_fields = _recipients(call)
    if not users:
        raise ApiError(errors.ALL_RECIPIENTS_INVALID, extra=invalid_fields)
    msgid = state.new_id("sbappmsg")
    key = msgtype + ":" + json.dumps(content, sort_keys=True, ensure_ascii=False)
    for userid in users:
        reason = _drop_reason(state, userid, key, call.now, float(interval) if check else None)
        state.deliveries.append(
            Delivery(
                kind="app",
                sender=str(call.config.agent_id),
                to=userid,
                msgid=msgid,
                msgtype=msgtype,
                content={msgtype: content},
                at=call.now,
                dropped=reason,
            )
        )
        if not reason:
            state.app_msg_times[userid].append(call.now)
            state.app_msg_last_seen[(userid, key)] = call.now
    reply: Json = {**invalid_fields, "msgid": msgid}
    if msgtype == "template_card":
        task_id = get_str(content, "task_id") or msgid
        card_type = get_str(content, "card_type")
        state.cards[task_id] = Card(msgid=msgid, task_id=task_id, card_type=card_type, recipients=users, card=content)
        if card_type in INTERACTIVE:
            reply["response_code"] = state.issue_response_code(call.now, userid="", ref=task_id)
    return reply


@router.post("message/update_template_card")
def update_template_card(call: Call) -> Json:
    """Update a sent card with a single-use ResponseCode (from message/send or a button event)."""
    state, body = call.state, call.body
    _check_agent(call)
    code = get_str(body, "response_code", required=True)
    button = get_obj(body, "button")
    card = get_obj(body, "template_card")
    if not button and not card:
        raise invalid("button or template_card is required")
    if button:
        get_str(button, "replace_name", required=True)
    grant = state.response_codes.get(code)
    if grant is None or not grant.valid(call.now):
        raise invalid("response_code is unknown, used or expired (valid 72 h, single use)")
    grant.used = True
    sent = state.cards.get(grant.ref)
    userids = get_str_list(body, "userids")
    if body.get("atall") or not userids:
        userids = sent.recipients if sent else ([grant.userid] if grant.userid else [])
    update: Json = {"button": button} if button else {"template_card": card}
    if sent is not None:
        sent.updates.append(update)
    for userid in userids:
        state.deliveries.append(
            Delivery(
                kind="card_update",
                sender=str(call.config.agent_id),
                to=userid,
                msgid=grant.ref,
                msgtype="update_template_card",
                content=update,
                at=call.now,
            )
        )
    return {"invaliduser": []}


def _store_upload(call: Call, media_type: str) -> Json:
    if media_type not in MEDIA_LIMITS:
        raise ApiError(errors.INVALID_MEDIA_TYPE, "type must be image, voice, video or file")
    upload = call.files.get("media")
    if upload is None:
        raise invalid("multipart field 'media' is required")
    if not 5 < len(upload.data) <= MEDIA_LIMITS[media_type]:
        raise ApiError(errors.INVALID_FILE_SIZE, f"{media_type} must be 6 bytes to {MEDIA_LIMITS[media_type]} bytes")
    media_id = call.state.new_id("sbmedia")
    call.state.media[media_id] = Media(
        media_id=media_id, type=media_type, filename=upload.filename, size=len(upload.data), created_at=call.now
    )
    return {"type": media_type, "media_id": media_id, "created_at": str(int(call.now))}


@router.post("media/upload")
def media_upload(call: Call) -> Json:
    """Temporary media (valid 3 days): ``?type=image|voice|video|file``, multipart field ``media``."""
    return _store_upload(call, call.arg("type"))


@router.post("media/upload_attachment")
def media_upload_attachment(call: Call) -> Json:
    """Attachments for moments: ``?media_type=&attachment_type=1``."""
    if call.arg("attachment_type") not in ("1", "2"):
        raise invalid("attachment_type must be 1 (朋友圈) or 2 (商品图册)")
    return _store_upload(call, call.arg("media_type"))
