"""Typed calls for customer groups: groupchat list/get, 「加入群聊」 join ways, group welcome template."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any, Literal

from scrm.adapters.wecom.api_base import ApiBase
from scrm.adapters.wecom.models import WeComResponse
from scrm.adapters.wecom.models_groups import (
    AddGroupWelcomeTemplateResponse,
    AddJoinWayResponse,
    GetGroupChatResponse,
    GetJoinWayResponse,
    GroupChatListResponse,
    GroupChatRef,
    GroupWelcomeTemplate,
    JoinWay,
    TransferGroupChatResponse,
)

StatusFilter = Literal[0, 1, 2, 3]


def _list_body(status_filter: StatusFilter, owners: Sequence[str] | None, limit: int) -> dict[str, Any]:
    body: dict[str, Any] = {"status_filter": status_filter, "limit": limit}
    if owners:
        body["owner_filter"] = {"userid_list": list(owners)}
    return body


class GroupsApi(ApiBase):
    """externalcontact/groupchat and group_welcome_template."""

    async def list_group_chats(self, *, status_filter: StatusFilter = 0, owners: Sequence[str] | None = None,
                               cursor: str = "", limit: int = 1000) -> GroupChatListResponse:
        """One page of group chats (``owners`` ≤100; without it >1,000 visible users gives 81017)."""
        body = {**_list_body(status_filter, owners, limit), "cursor": cursor}
        return GroupChatListResponse.model_validate(await self.call("externalcontact/groupchat/list", body))

    async def iter_group_chats(self, *, status_filter: StatusFilter = 0, owners: Sequence[str] | None = None,
                               limit: int = 1000) -> AsyncIterator[GroupChatRef]:
        """Every group chat across all pages."""
        async for page in self._pages("externalcontact/groupchat/list",
                                      _list_body(status_filter, owners, limit), GroupChatListResponse):
            for ref in page.group_chat_list:
                yield ref

    async def get_group_chat(self, chat_id: str, *, need_name: bool = True) -> GetGroupChatResponse:
        """Group details with members and ``member_version`` (to apply callback deltas)."""
        body = {"chat_id": chat_id, "need_name": 1 if need_name else 0}
        return GetGroupChatResponse.model_validate(await self.call("externalcontact/groupchat/get", body))

    async def transfer_group_chats(self, chat_ids: Sequence[str], new_owner: str) -> TransferGroupChatResponse:
        """离职继承 of ≤100 customer groups to ``new_owner`` (active); failures are per chat."""
        body = {"chat_id_list": list(chat_ids), "new_owner_userid": new_owner}
        return TransferGroupChatResponse.model_validate(await self.call("externalcontact/groupchat/transfer", body))

    # -- 「加入群聊」 -------------------------------------------------------------------------

    async def add_join_way(self, way: JoinWay) -> AddJoinWayResponse:
        """Create a join-group way for ≤5 chats; fetch its QR code with :meth:`get_join_way`."""
        return AddJoinWayResponse.model_validate(await self.call("externalcontact/groupchat/add_join_way",
                                                                 way.to_body()))

    async def get_join_way(self, config_id: str) -> GetJoinWayResponse:
        return GetJoinWayResponse.model_validate(
            await self.call("externalcontact/groupchat/get_join_way", {"config_id": config_id}))

    async def update_join_way(self, way: JoinWay) -> WeComResponse:
        """Full overwrite of ``way.config_id``."""
        if not way.config_id:
            raise ValueError("update_join_way needs config_id")
        return WeComResponse.model_validate(await self.call("externalcontact/groupchat/update_join_way",
                                                            way.to_body()))

    async def del_join_way(self, config_id: str) -> WeComResponse:
        return WeComResponse.model_validate(
            await self.call("externalcontact/groupchat/del_join_way", {"config_id": config_id}))

    # -- group welcome -----------------------------------------------------------------------

    async def add_group_welcome_template(self, template: GroupWelcomeTemplate) -> AddGroupWelcomeTemplateResponse:
        """Create an entry-group welcome template; returns its ``template_id``."""
        return AddGroupWelcomeTemplateResponse.model_validate(
            await self.call("externalcontact/group_welcome_template/add", template.to_body()))
