"""Typed models of the customer-group APIs: groupchat list/get, 「加入群聊」 join ways and the
group welcome template (PROTOCOL.md §4 Groups)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from scrm.adapters.wecom.models import (
    Image,
    Link,
    MediaRef,
    Miniprogram,
    PagedResponse,
    Text,
    WeComModel,
    WeComRequest,
    WeComResponse,
)


class GroupChatRef(WeComModel):
    chat_id: str
    status: int = 0  # 0 normal, 1 resigned-pending, 2 in transfer, 3 transferred


class GroupChatListResponse(PagedResponse):
    group_chat_list: list[GroupChatRef] = Field(default_factory=list)


class Invitor(WeComModel):
    userid: str = ""


class GroupMember(WeComModel):
    userid: str
    type: int = 1  # 1 member, 2 external contact
    unionid: str | None = None
    join_time: int = 0
    join_scene: int = 0  # 1 direct invite, 2 invite link, 3 QR code
    state: str | None = None
    invitor: Invitor | None = None
    group_nickname: str = ""
    name: str = ""


class GroupAdmin(WeComModel):
    userid: str


class GroupChat(WeComModel):
    chat_id: str
    name: str = ""
    owner: str = ""
    create_time: int = 0
    notice: str = ""
    member_list: list[GroupMember] = Field(default_factory=list)
    admin_list: list[GroupAdmin] = Field(default_factory=list)
    member_version: str = ""


class GetGroupChatResponse(WeComResponse):
    group_chat: GroupChat


class JoinWay(WeComRequest):
    """groupchat/add_join_way and update_join_way body (update is a full overwrite)."""

    config_id: str | None = None
    scene: Literal[1, 2]  # 1 mini-program plug-in, 2 QR-code plug-in
    remark: str | None = None
    auto_create_room: Literal[0, 1] | None = None
    room_base_name: str | None = None
    room_base_id: int | None = None
    chat_id_list: list[str] = Field(max_length=5)
    state: str | None = Field(default=None, max_length=30)
    mark_source: bool | None = None


class AddJoinWayResponse(WeComResponse):
    config_id: str


class JoinWayInfo(WeComModel):
    config_id: str
    scene: int = 0
    remark: str = ""
    auto_create_room: int = 1
    room_base_name: str = ""
    room_base_id: int | None = None
    chat_id_list: list[str] = Field(default_factory=list)
    qr_code: str = ""
    state: str = ""


class GetJoinWayResponse(WeComResponse):
    join_way: JoinWayInfo


class GroupWelcomeTemplate(WeComRequest):
    """group_welcome_template/add body: text plus at most one attachment kind."""

    text: Text | None = None
    image: Image | None = None
    link: Link | None = None
    miniprogram: Miniprogram | None = None
    file: MediaRef | None = None
    video: MediaRef | None = None
    agentid: int | None = None
    notify: Literal[0, 1] | None = None


class AddGroupWelcomeTemplateResponse(WeComResponse):
    template_id: str



class FailedChat(WeComModel):
    chat_id: str
    errcode: int = 0
    errmsg: str = ""


class TransferGroupChatResponse(WeComResponse):
    """groupchat/transfer: the chats that were not handed over, each with its errcode."""

    failed_chat_list: list[FailedChat] = Field(default_factory=list)
