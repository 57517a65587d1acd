"""Customer APIs: list, get, batch/get_by_user, remark, send_welcome_msg (PROTOCOL.md §4)."""

from __future__ import annotations

from scrm.sandbox import errors
from scrm.sandbox.content import check_attachments, check_text
from scrm.sandbox.errors import ApiError, invalid
from scrm.sandbox.params import Json, get_int, get_list, get_str, get_str_list, page
from scrm.sandbox.records import Customer, Delivery, Follow
from scrm.sandbox.routing import Call, RouteTable
from scrm.sandbox.state import SandboxState

router = RouteTable()


def customer_json(customer: Customer) -> Json:
    """``external_contact`` as WeCom returns it (unionid only when known; corp fields for type 2)."""
    data: Json = {
        "external_userid": customer.external_userid,
        "name": customer.name,
        "avatar": customer.avatar,
        "type": customer.type,
        "gender": customer.gender,
    }
    if customer.unionid:
        data["unionid"] = customer.unionid
    if customer.type == 2:
        data.update(position=customer.position, corp_name=customer.corp_name, corp_full_name=customer.corp_full_name)
    return data


def _follow_common(relation: Follow) -> Json:
    data: Json = {
        "userid": relation.userid,
        "remark": relation.remark,
        "description": relation.description,
        "createtime": int(relation.createtime),
        "remark_corp_name": relation.remark_corp_name,
        "remark_mobiles": list(relation.remark_mobiles),
        "oper_userid": relation.oper_userid,
        "add_way": relation.add_way,
    }
    if relation.state:
        data["state"] = relation.state
    return data


def follow_user_json(state: SandboxState, relation: Follow) -> Json:
    """A ``follow_user`` item of externalcontact/get, tags expanded with their group names."""
    data = _follow_common(relation)
    tags = []
    for tag_id in relation.tag_ids:
        tag = state.live_tag(tag_id)
        if tag is not None:
            group = state.tag_groups[tag.group_id]
            tags.append({"group_name": group.group_name, "tag_name": tag.name, "type": 1, "tag_id": tag.id})
    data["tags"] = tags
    return data


def follow_info_json(relation: Follow) -> Json:
    """A ``follow_info`` of batch/get_by_user: tag ids only."""
    data = _follow_common(relation)
    data["tag_id"] = list(relation.tag_ids)
    return data


@router.get("externalcontact/list")
def list_customers(call: Call) -> Json:
    """A member's customers. Like WeCom, a member with none answers 84061."""
    userid = call.arg("userid")
    call.state.require_member(userid)
    ids = [f.external_userid for f in call.state.follows_of_member(userid)]
    if not ids:
        raise ApiError(errors.NOT_EXTERNAL_CONTACT, f"{userid} has no external contact")
    return {"external_userid": ids}


@router.get("externalcontact/get")
def get_customer(call: Call) -> Json:
    """One customer with follow_user paged by ``Limits.follow_user_page`` (WeCom: 500)."""
    state = call.state
    customer = state.require_customer(call.arg("external_userid"))
    follows = state.follows_of_customer(customer.external_userid)
    if not follows:
        raise ApiError(errors.NOT_EXTERNAL_CONTACT, "no member follows this customer")
    chunk, next_cursor = page(follows, call.arg("cursor"), state.limits.follow_user_page)
    reply: Json = {
        "external_contact": customer_json(customer),
        "follow_user": [follow_user_json(state, f) for f in chunk],
    }
    if next_cursor:
        reply["next_cursor"] = next_cursor
    return reply


@router.post("externalcontact/batch/get_by_user")
def batch_get_by_user(call: Call) -> Json:
    """Customers of up to 100 members, ``limit`` (≤100, default 50) per page."""
    state = call.state
    userids = get_str_list(call.body, "userid_list", max_items=100)
    if not userids:
        raise invalid("userid_list is required")
    for userid in userids:
        state.require_member(userid, "userid_list")
    limit = get_int(call.body, "limit", 50, lo=1, hi=100)
    chunk, next_cursor = _member_page(state, userids, get_str(call.body, "cursor"), limit)
    items = [
        {
            "external_contact": customer_json(state.customers[f.external_userid]),
            "follow_info": follow_info_json(f),
        }
        for f in chunk
    ]
    return {"external_contact_list": items, "next_cursor": next_cursor}


def _member_page(state: SandboxState, userids: list[str], cursor: str, limit: int) -> tuple[list[Follow], str]:
    """One page of the members' relations, member after member; the cursor names the member
    (its index in ``userids``) and the offset in its list, so a page reads only what it returns
    (a seeded corp has hundreds of thousands of relations)."""
    member, offset = 0, 0
    if cursor:
        head, _, tail = cursor.removeprefix("sbu").partition(".")
        if not cursor.startswith("sbu") or not head.isdigit() or not tail.isdigit():
            raise invalid("cursor is invalid")
        member, offset = int(head), int(tail)
    chunk: list[Follow] = []
    while member < len(userids) and len(chunk) < limit:
        rows = state.follows_of_member(userids[member])
        take = rows[offset:offset + limit - len(chunk)]
        chunk.extend(take)
        offset += len(take)
        if offset >= len(rows):
            member, offset = member + 1, 0
    # Like WeCom, a page that ends exactly at the end still hands out a cursor only if more follow.
    while member < len(userids) and offset == 0 and not state.follows_of_member(userids[member]):
        member += 1
    return chunk, (f"sbu{member}.{offset}" if member < len(userids) else "")


@router.post("externalcontact/remark")
def remark(call: Call) -> Json:
    """Edit the member's remark fields; only fields present are changed."""
    state, body = call.state, call.body
    relation = state.require_follow(get_str(body, "userid"), get_str(body, "external_userid", required=True))
    fields = ("remark", "description", "remark_company", "remark_mobiles", "remark_pic_mediaid")
    if not any(k in body for k in fields):
        raise invalid("one of remark, description, remark_company, remark_mobiles, remark_pic_mediaid is required")
    text = get_str(body, "remark", max_chars=20)
    description = get_str(body, "description", max_chars=150)
    company = get_str(body, "remark_company", max_chars=20)
    mobiles = get_str_list(body, "remark_mobiles")
    if "remark_pic_mediaid" in body:
        state.require_media(get_str(body, "remark_pic_mediaid", required=True), call.now, "remark_pic_mediaid")
    if "remark" in body:
        relation.remark = text
    if "description" in body:
        relation.description = description
    # remark_company only applies to WeChat (type 1) customers, silently ignored otherwise.
    if "remark_company" in body and state.customers[relation.external_userid].type == 1:
        relation.remark_corp_name = company
    if "remark_mobiles" in body:
        relation.remark_mobiles = [m for m in mobiles if m]  # [""] clears
    return {}


@router.post("externalcontact/send_welcome_msg")
def send_welcome_msg(call: Call) -> Json:
    """Send the welcome message for a WelcomeCode: valid 20 s, single use.

    Content is validated before the code is consumed, so a bad payload does not burn it.
    A used code answers 41051; an unknown or expired code answers 40058.
    """
    state, body = call.state, call.body
    code = get_str(body, "welcome_code", required=True)
    text = check_text(body, max_bytes=4000)
    attachments = check_attachments(state, get_list(body, "attachments"), call.now)
    if not text.get("content") and not attachments:
        raise invalid("text.content or attachments is required")
    grant = state.consume_welcome_code(code, call.now)
    state.deliveries.append(
        Delivery(
            kind="welcome",
            sender=grant.userid,
            to=grant.external_userid,
            msgid=code,
            msgtype="welcome",
            content={"text": text, "attachments": attachments},
            at=call.now,
        )
    )
    return {}
