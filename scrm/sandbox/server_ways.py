"""「联系我」 APIs (92228): add/get/update/del/list_contact_way and close_temp_chat."""

from __future__ import annotations

from scrm.sandbox.errors import invalid
from scrm.sandbox.params import Json, get_int, get_list, get_obj, get_str, get_str_list, page
from scrm.sandbox.records import ContactWay
from scrm.sandbox.routing import Call, RouteTable
from scrm.sandbox.state import SandboxState

router = RouteTable()
DAY = 86400
MAX_USERS = 100


def _users_and_parties(state: SandboxState, body: Json, way_type: int) -> tuple[list[str], list[int]]:
    users = get_str_list(body, "user", max_items=MAX_USERS)
    parties = [int(p) for p in get_list(body, "party", max_items=MAX_USERS) if str(p).isdigit()]
    for userid in users:
        state.require_member(userid, "user")
    if way_type == 1 and (len(users) != 1 or parties):
        raise invalid("type 1 (单人) needs exactly one user and no party")
    if way_type == 2 and not users and not parties:
        raise invalid("user or party is required")
    return users, parties


def _require_way(state: SandboxState, body: Json) -> ContactWay:
    config_id = get_str(body, "config_id", required=True)
    way = state.contact_ways.get(config_id)
    if way is None:
        raise invalid(f"config_id {config_id!r} not found")
    return way


@router.post("externalcontact/add_contact_way")
def add_contact_way(call: Call) -> Json:
    """Create a way; scene 2 returns a QR code URL. state ≤30 chars, remark ≤30 chars."""
    state, body = call.state, call.body
    way_type = get_int(body, "type", 0, lo=1, hi=2)
    scene = get_int(body, "scene", 0, lo=1, hi=2)
    users, parties = _users_and_parties(state, body, way_type)
    is_temp = bool(body.get("is_temp", False))
    if is_temp and way_type != 1:
        raise invalid("is_temp supports type 1 (单人) only")
    config_id = state.new_id("sbcontactway")
    data: Json = {
        "config_id": config_id,
        "type": way_type,
        "scene": scene,
        "style": get_int(body, "style", 1, lo=0),
        "remark": get_str(body, "remark", max_chars=30),
        "skip_verify": bool(body.get("skip_verify", True)),
        "state": get_str(body, "state", max_chars=30),
        "user": users,
        "party": parties,
        "is_temp": is_temp,
        "expires_in": get_int(body, "expires_in", 7 * DAY, lo=1, hi=14 * DAY),
        "chat_expires_in": get_int(body, "chat_expires_in", DAY, lo=1, hi=14 * DAY),
        "unionid": get_str(body, "unionid"),
        "is_exclusive": bool(body.get("is_exclusive", False)),
        "conclusions": get_obj(body, "conclusions"),
    }
    if scene == 2:
        data["qr_code"] = f"https://sandbox.invalid/contactway/{config_id}.png"
    expires_at = call.now + data["expires_in"] if is_temp else 0.0
    state.contact_ways[config_id] = ContactWay(
        config_id=config_id, create_time=call.now, body=data, is_temp=is_temp, expires_at=expires_at
    )
    reply: Json = {"config_id": config_id}
    if scene == 2:
        reply["qr_code"] = data["qr_code"]
    return reply


@router.post("externalcontact/get_contact_way")
def get_contact_way(call: Call) -> Json:
    return {"contact_way": dict(_require_way(call.state, call.body).body)}


@router.post("externalcontact/update_contact_way")
def update_contact_way(call: Call) -> Json:
    """Overwrite the fields given; an expired temporary way can no longer be edited."""
    state, body = call.state, call.body
    way = _require_way(state, body)
    if way.is_temp and call.now >= way.expires_at:
        raise invalid("an expired temporary contact way cannot be updated")
    data = dict(way.body)
    if "user" in body or "party" in body:
        data["user"], data["party"] = _users_and_parties(state, body, int(data["type"]))
    if "remark" in body:
        data["remark"] = get_str(body, "remark", max_chars=30)
    if "state" in body:
        data["state"] = get_str(body, "state", max_chars=30)
    if "style" in body:
        data["style"] = get_int(body, "style", 1, lo=0)
    if "skip_verify" in body:
        data["skip_verify"] = bool(body["skip_verify"])
    if "expires_in" in body:
        data["expires_in"] = get_int(body, "expires_in", 7 * DAY, lo=1, hi=14 * DAY)
    if "chat_expires_in" in body:
        data["chat_expires_in"] = get_int(body, "chat_expires_in", DAY, lo=1, hi=14 * DAY)
    if "unionid" in body:
        data["unionid"] = get_str(body, "unionid")
    if "conclusions" in body:
        data["conclusions"] = get_obj(body, "conclusions")
    way.body = data
    return {}


@router.post("externalcontact/del_contact_way")
def del_contact_way(call: Call) -> Json:
    way = _require_way(call.state, call.body)
    del call.state.contact_ways[way.config_id]
    return {}


@router.post("externalcontact/list_contact_way")
def list_contact_way(call: Call) -> Json:
    """Non-temporary ways created in [start_time, end_time] (default: the last 90 days)."""
    body = call.body
    end = get_int(body, "end_time", int(call.now), lo=0)
    start = get_int(body, "start_time", end - 90 * DAY, lo=0)
    if start > end:
        raise invalid("start_time must not be after end_time")
    limit = get_int(body, "limit", 100, lo=1, hi=1000)
    ways = [w for w in call.state.contact_ways.values() if not w.is_temp and start <= w.create_time <= end + 0.999]
    chunk, next_cursor = page(ways, get_str(body, "cursor"), limit)
    return {"contact_way": [{"config_id": w.config_id} for w in chunk], "next_cursor": next_cursor}


@router.post("externalcontact/close_temp_chat")
def close_temp_chat(call: Call) -> Json:
    """End a temporary chat; the sandbox only checks the relation exists."""
    call.state.require_follow(
        get_str(call.body, "userid", required=True), get_str(call.body, "external_userid", required=True)
    )
    return {}
