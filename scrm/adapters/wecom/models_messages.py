"""Typed models of the messaging APIs: 企业群发 (add_msg_template and its reports), app messages
(message/send, update_template_card), media upload and moments (PROTOCOL.md §4)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from scrm.adapters.wecom.models import Attachment, PagedResponse, Text, WeComModel, WeComRequest, WeComResponse

# ------------------------------------------------------------------------------------------
# 企业群发
# ------------------------------------------------------------------------------------------

class TagList(WeComRequest):
    tag_list: list[str]


class TagFilter(WeComRequest):
    """Customers carrying any tag of every listed group."""

    group_list: list[TagList]


class MsgTemplate(WeComRequest):
    """add_msg_template body. It only creates a task each sender must confirm in the client."""

    chat_type: Literal["single", "group"] = "single"
    external_userid: list[str] | None = Field(default=None, max_length=10_000)
    chat_id_list: list[str] | None = Field(default=None, max_length=2000)
    tag_filter: TagFilter | None = None
    sender: str | None = None
    allow_select: bool | None = None
    text: Text | None = None
    attachments: list[Attachment] | None = Field(default=None, max_length=9)


class AddMsgTemplateResponse(WeComResponse):
    fail_list: list[str] = Field(default_factory=list)
    msgid: str = ""


class MsgText(WeComModel):
    content: str = ""


class GroupMsg(WeComModel):
    msgid: str
    creator: str | None = None  # absent for API-created tasks
    create_time: int = 0
    create_type: int = 0  # 0 corp, 1 member
    text: MsgText | None = None
    attachments: list[dict[str, Any]] = Field(default_factory=list)


class GetGroupMsgListResponse(PagedResponse):
    group_msg_list: list[GroupMsg] = Field(default_factory=list)


class GroupMsgTask(WeComModel):
    userid: str
    status: int = 0  # 0 not sent, 2 sent
    send_time: int = 0


class GetGroupMsgTaskResponse(PagedResponse):
    task_list: list[GroupMsgTask] = Field(default_factory=list)


class GroupMsgSendResult(WeComModel):
    external_userid: str | None = None
    chat_id: str | None = None
    userid: str = ""
    status: int = 0  # 0 not sent, 1 sent, 2 not a friend, 3 customer got another 群发
    send_time: int = 0


class GetGroupMsgSendResultResponse(PagedResponse):
    send_list: list[GroupMsgSendResult] = Field(default_factory=list)


# ------------------------------------------------------------------------------------------
# App messages
# ------------------------------------------------------------------------------------------

class TextCard(WeComRequest):
    title: str
    description: str
    url: str
    btntxt: str | None = None


class AppMessage(WeComRequest):
    """message/send body. Recipient lists may be given as lists; they are joined with ``|``.

    ``agentid`` is filled in by the client when left unset. ``enable_duplicate_check=1`` lets
    WeCom drop a resend of the same content within ``duplicate_check_interval`` seconds, which
    makes a retry after an ambiguous failure harmless.
    """

    touser: list[str] | str | None = None
    toparty: list[str] | str | None = None
    totag: list[str] | str | None = None
    msgtype: Literal["text", "textcard", "markdown", "template_card"]
    agentid: int | None = None
    text: Text | None = None
    textcard: TextCard | None = None
    markdown: Text | None = None
    template_card: dict[str, Any] | None = None
    safe: Literal[0, 1, 2] | None = None
    enable_id_trans: Literal[0, 1] | None = None
    enable_duplicate_check: Literal[0, 1] | None = None
    duplicate_check_interval: int | None = Field(default=None, ge=1, le=4 * 3600)

    def to_body(self) -> dict[str, Any]:
        body = super().to_body()
        for key in ("touser", "toparty", "totag"):
            if isinstance(body.get(key), list):
                body[key] = "|".join(body[key])
            if body.get(key) == "":
                del body[key]
        return body


class SendMessageResponse(WeComResponse):
    invaliduser: str = ""
    invalidparty: str = ""
    invalidtag: str = ""
    unlicenseduser: str = ""
    msgid: str = ""
    response_code: str = ""


class ReplaceButton(WeComRequest):
    replace_name: str


class UpdateTemplateCard(WeComRequest):
    """message/update_template_card body: either ``button`` or a whole ``template_card``."""

    userids: list[str] | None = None
    partyids: list[int] | None = None
    tagids: list[int] | None = None
    atall: Literal[0, 1] | None = None
    agentid: int | None = None
    response_code: str
    button: ReplaceButton | None = None
    template_card: dict[str, Any] | None = None


class UpdateTemplateCardResponse(WeComResponse):
    invaliduser: list[str] | str = Field(default_factory=list)


# ------------------------------------------------------------------------------------------
# Media, moments
# ------------------------------------------------------------------------------------------

MediaType = Literal["image", "voice", "video", "file"]


class UploadMediaResponse(WeComResponse):
    type: str = ""
    media_id: str
    created_at: int = 0  # WeCom sends a decimal string; lax mode converts it


class SenderList(WeComRequest):
    user_list: list[str] | None = None
    department_list: list[int] | None = None


class ExternalContactTags(WeComRequest):
    tag_list: list[str]


class VisibleRange(WeComRequest):
    sender_list: SenderList | None = None
    external_contact_list: ExternalContactTags | None = None


class MomentTask(WeComRequest):
    """add_moment_task body: text and ≤9 images, or 1 video, or 1 link (one kind only)."""

    text: Text | None = None
    attachments: list[Attachment] | None = Field(default=None, max_length=9)
    visible_range: VisibleRange | None = None


class AddMomentTaskResponse(WeComResponse):
    jobid: str


class InvalidSenders(WeComModel):
    user_list: list[str] = Field(default_factory=list)
    department_list: list[int] = Field(default_factory=list)


class InvalidExternalContacts(WeComModel):
    tag_list: list[str] = Field(default_factory=list)


class MomentTaskResult(WeComModel):
    errcode: int = 0
    errmsg: str = ""
    moment_id: str = ""
    invalid_sender_list: InvalidSenders | None = None
    invalid_external_contact_list: InvalidExternalContacts | None = None


class GetMomentTaskResultResponse(WeComResponse):
    status: int = 0  # 1 started, 2 running, 3 done
    type: str = ""
    result: MomentTaskResult | None = None
