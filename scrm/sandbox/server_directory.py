"""Address-book (通讯录) reads: department/list, user/simplelist, user/list_id, user/get.

Members who left (``resign_member``) are gone from the address book, as in WeCom: they are not
listed and ``user/get`` answers 60111. An unknown department answers 60123.
"""

from __future__ import annotations

from scrm.sandbox.errors import invalid
from scrm.sandbox.params import Json, get_int, get_str, page
from scrm.sandbox.records import Department, Member
from scrm.sandbox.routing import Call, RouteTable
from scrm.sandbox.state import SandboxState

router = RouteTable()

MAX_LIST_ID = 10000


def _department_json(state: SandboxState, department: Department) -> Json:
    return {"id": department.id, "name": department.name, "parentid": department.parentid,
            "order": department.order, "department_leader": state.department_leaders(department.id)}


def _int_arg(call: Call, key: str, *, required: bool = False) -> int | None:
    raw = call.arg(key)
    if not raw:
        if required:
            raise invalid(f"{key} is required")
        return None
    if not raw.isdigit():
        raise invalid(f"{key} must be an integer")
    return int(raw)


def _visible(state: SandboxState) -> list[Member]:
    return sorted((m for m in state.members.values() if m.status == "active"), key=lambda m: m.userid)


@router.get("department/list")
def department_list(call: Call) -> Json:
    """Every department (``id``: that one and those below it), parents first."""
    root = _int_arg(call, "id")
    return {"department": [_department_json(call.state, d) for d in call.state.department_tree(root or 1)]}


@router.get("user/simplelist")
def user_simplelist(call: Call) -> Json:
    """Members of a department (``fetch_child=1``: and of the departments below it)."""
    department = _int_arg(call, "department_id", required=True)
    assert department is not None
    ids = ({d.id for d in call.state.department_tree(department)} if call.arg("fetch_child") == "1"
           else {call.state.require_department(department).id})
    users = [m for m in _visible(call.state) if ids & set(m.department)]
    return {"userlist": [{"userid": m.userid, "name": m.name, "department": list(m.department)} for m in users]}


@router.post("user/list_id")
def user_list_id(call: Call) -> Json:
    """Every (member, department) pair, cursor-paged."""
    limit = get_int(call.body, "limit", MAX_LIST_ID, lo=1, hi=MAX_LIST_ID)
    pairs = [{"userid": m.userid, "department": d} for m in _visible(call.state) for d in m.department]
    chunk, cursor = page(pairs, get_str(call.body, "cursor"), limit)
    return {"dept_user": chunk, "next_cursor": cursor}


@router.get("user/get")
def user_get(call: Call) -> Json:
    """One member: departments, ``is_leader_in_dept`` parallel to them, main department, status."""
    member = call.state.require_member(call.arg("userid"))
    return {"userid": member.userid, "name": member.name, "department": list(member.department),
            "main_department": member.main, "position": member.position, "status": 1,
            "is_leader_in_dept": [1 if d in member.leader_in else 0 for d in member.department]}
