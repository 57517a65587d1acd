"""Customer succession (在职/离职继承) and the unassigned list (92125, 94088, 92124).

A started transfer waits 24 h on the clock (``Limits.transfer_takeover_s``), then the follow
moves to the takeover member (add_way 202) — applied lazily by ``SandboxState.settle``. Per-
customer codes: 40096 unknown customer, 84061 not the handover's customer, 40129 already being
transferred, 40128 more than 2 transfers in 90 days (the last two codes are from memory).
"""

from __future__ import annotations

from scrm.sandbox.errors import ApiError, invalid
from scrm.sandbox.params import Json, get_int, get_str, get_str_list, page
from scrm.sandbox.records import Transfer
from scrm.sandbox.routing import Call, RouteTable

router = RouteTable()
TRANSFER_IN_PROGRESS = 40129
TRANSFER_TOO_OFTEN = 40128
NINETY_DAYS = 90 * 86400.0


def _transfer(call: Call, resigned: bool) -> Json:
    state, body = call.state, call.body
    handover = get_str(body, "handover_userid", required=True)
    takeover = get_str(body, "takeover_userid", required=True)
    state.require_member(takeover, "takeover_userid")
    if resigned:
        member = state.members.get(handover)
        if member is None or member.status != "resigned":
            raise invalid("handover_userid must be a member who has left")
    else:
        state.require_member(handover, "handover_userid")
        get_str(body, "transfer_success_msg", max_chars=200)
    if handover == takeover:
        raise invalid("handover_userid and takeover_userid must differ")
    ext_ids = get_str_list(body, "external_userid", max_items=100)
    if not ext_ids:
        raise invalid("external_userid is required (1 to 100)")
    results: list[Json] = []
    for ext in ext_ids:
        code = 0
        history = [t for t in state.transfers if t.external_userid == ext]
        if ext not in state.customers:
            code = 40096
        elif state.follow(handover, ext) is None:
            code = 84061
        elif any(t.status == 2 for t in history):
            code = TRANSFER_IN_PROGRESS
        elif sum(1 for t in history if call.now - t.started_at < NINETY_DAYS) >= state.limits.transfers_per_90_days:
            code = TRANSFER_TOO_OFTEN
        else:
            state.transfers.append(
                Transfer(
                    handover_userid=handover,
                    takeover_userid=takeover,
                    external_userid=ext,
                    started_at=call.now,
                    resigned=resigned,
                )
            )
        results.append({"external_userid": ext, "errcode": code})
    return {"customer": results}


def _result(call: Call, resigned: bool) -> Json:
    body = call.body
    handover = get_str(body, "handover_userid", required=True)
    takeover = get_str(body, "takeover_userid", required=True)
    rows = [
        t
        for t in call.state.transfers
        if t.handover_userid == handover and t.takeover_userid == takeover and t.resigned == resigned
    ]
    chunk, next_cursor = page(rows, get_str(body, "cursor"), 1000)
    items: list[Json] = []
    for t in chunk:
        item: Json = {"external_userid": t.external_userid, "status": t.status}
        if t.takeover_time:
            item["takeover_time"] = int(t.takeover_time)
        items.append(item)
    return {"customer": items, "next_cursor": next_cursor}


@router.post("externalcontact/transfer_customer")
def transfer_customer(call: Call) -> Json:
    """在职继承: start transfers; each customer gets its own errcode."""
    return _transfer(call, resigned=False)


@router.post("externalcontact/transfer_result")
def transfer_result(call: Call) -> Json:
    """在职继承 status per customer: 1 完毕, 2 等待, 3 拒绝, 4 上限."""
    return _result(call, resigned=False)


@router.post("externalcontact/resigned/transfer_customer")
def resigned_transfer_customer(call: Call) -> Json:
    """离职继承: the handover member must have left."""
    return _transfer(call, resigned=True)


@router.post("externalcontact/resigned/transfer_result")
def resigned_transfer_result(call: Call) -> Json:
    return _result(call, resigned=True)


@router.post("externalcontact/get_unassigned_list")
def get_unassigned_list(call: Call) -> Json:
    """Customers of members who left and are not being transferred."""
    state, body = call.state, call.body
    page_size = get_int(body, "page_size", 1000, lo=1, hi=1000)
    page_id = get_int(body, "page_id", 0, lo=0)
    cursor = get_str(body, "cursor")
    busy = {(t.handover_userid, t.external_userid) for t in state.transfers if t.status == 2}
    rows = [
        (f.userid, f.external_userid, state.members[f.userid].dimission_time)
        for f in state.follows.values()
        if f.userid in state.members
        and state.members[f.userid].status == "resigned"
        and (f.userid, f.external_userid) not in busy
    ]
    if not cursor and page_id:
        cursor = f"sbc{page_id * page_size}"
    try:
        chunk, next_cursor = page(rows, cursor, page_size)
    except ApiError:
        raise invalid("cursor or page_id is invalid") from None
    info = [{"handover_userid": u, "external_userid": e, "dimission_time": int(d)} for u, e, d in chunk]
    return {"info": info, "is_last": not next_cursor, "next_cursor": next_cursor}
