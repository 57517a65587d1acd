"""Typed reads of the address book (通讯录): departments, a department's members, one member.

Reads only: the service never writes to the bank's directory.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from scrm.adapters.wecom.api_base import ApiBase
from scrm.adapters.wecom.models_directory import (
    Department,
    DepartmentListResponse,
    DeptUser,
    GetUserResponse,
    SimpleUser,
    UserListIdResponse,
    UserSimpleListResponse,
)


class DirectoryApi(ApiBase):
    """department/list, user/simplelist, user/list_id, user/get."""

    async def list_departments(self, department_id: int | None = None) -> list[Department]:
        """``department/list``: every department the app may see (``department_id``: that one and
        the departments under it)."""
        params = {"id": str(department_id)} if department_id is not None else {}
        data = await self.call("department/list", method="GET", params=params)
        return DepartmentListResponse.model_validate(data).department

    async def list_department_users(self, department_id: int, *, fetch_child: bool = False) -> list[SimpleUser]:
        """``user/simplelist``: members of one department (and of those under it with ``fetch_child``)."""
        params = {"department_id": str(department_id), "fetch_child": "1" if fetch_child else "0"}
        data = await self.call("user/simplelist", method="GET", params=params)
        return UserSimpleListResponse.model_validate(data).userlist

    async def iter_user_ids(self, *, limit: int = 10000) -> AsyncIterator[DeptUser]:
        """``user/list_id``: every (member, department) pair, across all pages."""
        async for page in self._pages("user/list_id", {"limit": limit}, UserListIdResponse):
            for item in page.dept_user:
                yield item

    async def get_user(self, userid: str) -> GetUserResponse:
        """``user/get``: one member with ``is_leader_in_dept``, ``main_department`` and ``status``."""
        data = await self.call("user/get", method="GET", params={"userid": userid})
        return GetUserResponse.model_validate(data)
