"""Typed models of the address-book (通讯录) reads the service makes: departments, the members of
a department, one member's detail.

Field names follow WeCom's ``department/list``, ``user/simplelist``, ``user/list_id`` and
``user/get``. New self-built apps may get a member's ``name`` back as the userid itself or empty
(WeCom's 2022 privacy change); callers decide what a missing name means.
"""

from __future__ import annotations

from pydantic import Field

from scrm.adapters.wecom.models import PagedResponse, WeComModel, WeComResponse


class Department(WeComModel):
    """One department (部门); ``parentid`` 0 for the root."""

    id: int
    name: str = ""
    parentid: int = 0
    order: int = 0
    department_leader: list[str] = Field(default_factory=list)


class DepartmentListResponse(WeComResponse):
    department: list[Department] = Field(default_factory=list)


class SimpleUser(WeComModel):
    userid: str
    name: str = ""
    department: list[int] = Field(default_factory=list)


class UserSimpleListResponse(WeComResponse):
    userlist: list[SimpleUser] = Field(default_factory=list)


class DeptUser(WeComModel):
    """One (member, department) pair of ``user/list_id``."""

    userid: str
    department: int = 0


class UserListIdResponse(PagedResponse):
    dept_user: list[DeptUser] = Field(default_factory=list)


class User(WeComModel):
    """``user/get``: ``is_leader_in_dept`` runs parallel to ``department`` (1 = leader there);
    ``status`` 1 active, 2 disabled, 4 not activated, 5 left the corp."""

    userid: str
    name: str = ""
    department: list[int] = Field(default_factory=list)
    main_department: int | None = None
    is_leader_in_dept: list[int] = Field(default_factory=list)
    position: str = ""
    status: int = 1


class GetUserResponse(WeComResponse, User):
    """The reply of ``user/get``: the member's fields beside errcode/errmsg."""
