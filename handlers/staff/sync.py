"""Reading WeCom's address book (通讯录) into a :class:`~handlers.staff.directory.Snapshot`.

``department/list`` gives every department the app may see (with ``department_leader``);
``user/simplelist`` per department gives its members; ``user/get`` per member gives the
departments, ``main_department``, ``is_leader_in_dept`` and ``status``. All reads happen before
anything is written (SQLite holds its write lock from the first write until commit).
"""

from __future__ import annotations

import asyncio

from handlers.staff.directory import Dept, PersonChange, Snapshot
from scrm.adapters.wecom.api import WeComClient
from scrm.adapters.wecom.errors import ErrCode, WeComError
from scrm.adapters.wecom.models_directory import User

# user/get calls in flight at once: the client paces them under the per-API limit anyway.
_CONCURRENCY = 8
# The app may not read the address book (no rights, or the member is outside its visible range):
# the callback's own fields are used instead.
NOT_READABLE = (ErrCode.API_FORBIDDEN, ErrCode.NO_PRIVILEGE, ErrCode.USERID_NOT_FOUND)
LEFT_CORP = 5  # user/get status: 退出企业


def person_of(user: User) -> PersonChange:
    """A member as ``user/get`` describes them."""
    departments = tuple(user.department)
    flags = list(user.is_leader_in_dept) + [0] * max(0, len(departments) - len(user.is_leader_in_dept))
    leads = frozenset(d for d, flag in zip(departments, flags, strict=False) if flag)
    return PersonChange(userid=user.userid, name=user.name, departments=departments,
                        main_department=user.main_department or (departments[0] if departments else None),
                        leader_in=leads, active=user.status != LEFT_CORP)


async def read_directory(wecom: WeComClient) -> Snapshot:
    """The whole address book the app may see; a member who left between the listing and their
    ``user/get`` (60111) is left out (a full sync then resigns them)."""
    departments = await wecom.list_departments()
    userids: dict[str, None] = {}
    for dept in departments:
        for user in await wecom.list_department_users(dept.id):
            userids.setdefault(user.userid)
    gate = asyncio.Semaphore(_CONCURRENCY)

    async def detail(userid: str) -> PersonChange | None:
        async with gate:
            try:
                return person_of(await wecom.get_user(userid))
            except WeComError as exc:
                if exc.errcode == ErrCode.USERID_NOT_FOUND:
                    return None
                raise

    people = [p for p in await asyncio.gather(*(detail(u) for u in userids)) if p is not None]
    depts = [Dept(id=d.id, name=d.name, parent_id=d.parentid or None, sort_order=d.order,
                  leaders=tuple(d.department_leader)) for d in departments]
    return Snapshot(departments=depts, people=people)
