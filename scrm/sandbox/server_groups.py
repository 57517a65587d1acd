"""Customer-group APIs: groupchat/list, groupchat/get, 「加入群聊」 ways, group welcome templates."""

from __future__ import annotations

from scrm.sandbox.errors import invalid
from scrm.sandbox.params import Json, get_int, get_obj, get_str, get_str_list, page
from scrm.sandbox.records import GroupChat, JoinWay
from scrm.sandbox.routing import Call, RouteTable
from scrm.sandbox.state import SandboxState

router = RouteTable()


@router.post("externalcontact/groupchat/list")
def groupchat_list(call: Call) -> Json:
    """Live groups filtered by status and owners, ``limit`` 1–1000 per page."""
    state, body = call.state, call.body
    status_filter = get_int(body, "status_filter", 0, lo=0, hi=3)
    owners = get_str_list(get_obj(body, "owner_filter"), "userid_list", max_items=100)
    limit = get_int(body, "limit", 0, lo=1, hi=1000)
    chats = [
        c
        for c in state.groups.values()
        if not c.dismissed and (status_filter == 0 or c.status == status_filter) and (not owners or c.owner in owners)
    ]
    chunk, next_cursor = page(chats, get_str(body, "cursor"), limit)
    return {
        "group_chat_list": [{"chat_id": c.chat_id, "status": c.status} for c in chunk],
        "next_cursor": next_cursor,
    }


def group_chat_json(chat: GroupChat, need_name: bool) -> Json:
    members: list[Json] = []
    for m in chat.members.values():
        item: Json = {"userid": m.userid, "type": m.type, "join_time": int(m.join_time), "join_scene": m.join_scene}
        if m.invitor:
            item["invitor"] = {"userid": m.invitor}
        item["group_nickname"] = m.group_nickname
        if need_name:
            item["name"] = m.name
        if m.type == 2 and m.unionid:
            item["unionid"] = m.unionid
        if m.state:
            item["state"] = m.state
        members.append(item)
    return {
        "chat_id": chat.chat_id,
        "name": chat.name,
        "owner": chat.owner,
        "create_time": int(chat.create_time),
        "notice": chat.notice,
        "member_list": members,
        "admin_list": [{"userid": a} for a in chat.admins],
        "member_version": chat.member_version,
    }


@router.post("externalcontact/groupchat/get")
def groupchat_get(call: Call) -> Json:
    """Group details with ``member_version`` (changes with every join/quit)."""
    chat = call.state.require_group(get_str(call.body, "chat_id", required=True))
    need_name = get_int(call.body, "need_name", 0, lo=0, hi=1) == 1
    return {"group_chat": group_chat_json(chat, need_name)}


def _join_way_body(state: SandboxState, body: Json, config_id: str) -> Json:
    scene = get_int(body, "scene", 0, lo=1, hi=2)
    chat_ids = get_str_list(body, "chat_id_list", max_items=5)
    if not chat_ids:
        raise invalid("chat_id_list is required (1 to 5 groups)")
    for chat_id in chat_ids:
        state.require_group(chat_id)
    data: Json = {
        "config_id": config_id,
        "scene": scene,
        "remark": get_str(body, "remark")[:30],  # WeCom truncates a longer remark
        "auto_create_room": get_int(body, "auto_create_room", 1, lo=0, hi=1),
        "room_base_name": get_str(body, "room_base_name", max_chars=40),
        "room_base_id": get_int(body, "room_base_id", 0, lo=0),
        "chat_id_list": chat_ids,
        "state": get_str(body, "state", max_chars=30),
        "mark_source": bool(body.get("mark_source", False)),
    }
    if scene == 2:
        data["qr_code"] = f"https://sandbox.invalid/joinway/{config_id}.png"
    return data


def _require_join_way(state: SandboxState, body: Json) -> JoinWay:
    config_id = get_str(body, "config_id", required=True)
    way = state.join_ways.get(config_id)
    if way is None:
        raise invalid(f"config_id {config_id!r} not found")
    return way


@router.post("externalcontact/groupchat/add_join_way")
def add_join_way(call: Call) -> Json:
    """Create a 「加入群聊」 way over ≤5 existing groups."""
    config_id = call.state.new_id("sbjoinway")
    data = _join_way_body(call.state, call.body, config_id)
    call.state.join_ways[config_id] = JoinWay(config_id=config_id, create_time=call.now, body=data)
    return {"config_id": config_id}


@router.post("externalcontact/groupchat/get_join_way")
def get_join_way(call: Call) -> Json:
    return {"join_way": dict(_require_join_way(call.state, call.body).body)}


@router.post("externalcontact/groupchat/update_join_way")
def update_join_way(call: Call) -> Json:
    """A full overwrite, as WeCom documents it."""
    way = _require_join_way(call.state, call.body)
    way.body = _join_way_body(call.state, call.body, way.config_id)
    return {}


@router.post("externalcontact/groupchat/del_join_way")
def del_join_way(call: Call) -> Json:
    way = _require_join_way(call.state, call.body)
    del call.state.join_ways[way.config_id]
    return {}


_WELCOME_PARTS = ("text", "image", "link", "miniprogram", "file", "video")


def _welcome_template(body: Json) -> Json:
    text = get_obj(body, "text")
    if text:
        get_str(text, "content", max_bytes=4000)
    parts = {k: get_obj(body, k) for k in _WELCOME_PARTS if k in body}
    if not any(parts.values()):
        raise invalid("one of text, image, link, miniprogram, file, video is required")
    if sum(1 for k in _WELCOME_PARTS[1:] if parts.get(k)) > 1:
        raise invalid("only one attachment (image, link, miniprogram, file or video) is allowed")
    return parts


@router.post("externalcontact/group_welcome_template/add")
def add_group_welcome_template(call: Call) -> Json:
    """Store an 入群欢迎语素材; ``notify`` is accepted and ignored (there is no client)."""
    template_id = call.state.new_id("sbgwt")
    call.state.group_welcome_templates[template_id] = _welcome_template(call.body)
    return {"template_id": template_id}


@router.post("externalcontact/group_welcome_template/get")
def get_group_welcome_template(call: Call) -> Json:
    template_id = get_str(call.body, "template_id", required=True)
    found = call.state.group_welcome_templates.get(template_id)
    if found is None:
        raise invalid(f"template_id {template_id!r} not found")
    return dict(found)


@router.post("externalcontact/group_welcome_template/del")
def del_group_welcome_template(call: Call) -> Json:
    template_id = get_str(call.body, "template_id", required=True)
    if call.state.group_welcome_templates.pop(template_id, None) is None:
        raise invalid(f"template_id {template_id!r} not found")
    return {}


# -- 分配离职成员的客户群 (groupchat/transfer) ---------------------------------------------------
# Per-chat codes (from memory, like server_transfer's): 90501 not a customer group (or unknown),
# 90500 its owner has not left (a repeat after success lands here: the new owner is active),
# 90504 the new owner is the owner already. WeCom's 300 chats a day per old owner is not emulated.
OWNER_NOT_RESIGNED = 90500
NOT_CUSTOMER_GROUP = 90501
ALREADY_OWNER = 90504


@router.post("externalcontact/groupchat/transfer")
def groupchat_transfer(call: Call) -> Json:
    """离职继承 of customer groups: ≤100 chats to an active new owner; the chat's status becomes 3
    (离职继承完成) and the new owner is its owner at once. Failures are per chat."""
    state, body = call.state, call.body
    chat_ids = get_str_list(body, "chat_id_list", max_items=100)
    if not chat_ids:
        raise invalid("chat_id_list is required (1 to 100 groups)")
    new_owner = get_str(body, "new_owner_userid", required=True)
    state.require_member(new_owner, "new_owner_userid")  # 60111 unless an active member
    failed: list[Json] = []
    for chat_id in chat_ids:
        chat = state.groups.get(chat_id)
        code = 0
        if chat is None or chat.dismissed:
            code = NOT_CUSTOMER_GROUP
        elif chat.owner == new_owner:
            code = ALREADY_OWNER
        elif state.active_member(chat.owner) is not None:
            code = OWNER_NOT_RESIGNED
        if code:
            failed.append({"chat_id": chat_id, "errcode": code, "errmsg": "transfer failed"})
            continue
        assert chat is not None
        chat.admins = [a for a in chat.admins if a != new_owner]
        chat.owner = new_owner
        chat.status = 3
    return {"failed_chat_list": failed}
