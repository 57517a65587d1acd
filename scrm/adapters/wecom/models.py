"""Typed request/response models of the WeCom server API: base classes, token, customers, tags,
「联系我」, succession and OAuth. Groups are in :mod:`models_groups`, messages in :mod:`models_messages`.

Responses allow extra fields (WeCom adds fields without notice; they stay in ``model_extra``)
and default every optional field, so a sparse reply still validates. Requests serialise with
``to_body()``, which drops unset ``None`` fields so WeCom applies its own defaults.
Field names and limits follow PROTOCOL.md §4.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field


class WeComModel(BaseModel):
    """Lenient base for anything WeCom sends back."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)


class WeComResponse(WeComModel):
    """Every reply carries ``errcode`` (0 = ok) and ``errmsg``."""

    errcode: int = 0
    errmsg: str = "ok"


class PagedResponse(WeComResponse):
    """A cursor page; an empty ``next_cursor`` means the last page."""

    next_cursor: str = ""


class WeComRequest(BaseModel):
    """Base for request bodies; extra keys pass through for fields not modelled yet."""

    model_config = ConfigDict(extra="allow")

    def to_body(self) -> dict[str, Any]:
        """The JSON body, without ``None`` fields."""
        return self.model_dump(mode="json", exclude_none=True)


# ------------------------------------------------------------------------------------------
# Shared content: text and attachments (welcome, 群发, moments)
# ------------------------------------------------------------------------------------------

class Text(WeComRequest):
    content: str


class Image(WeComRequest):
    media_id: str | None = None
    pic_url: str | None = None


class Link(WeComRequest):
    title: str
    url: str
    picurl: str | None = None
    desc: str | None = None
    media_id: str | None = None  # moments use a media_id cover


class Miniprogram(WeComRequest):
    title: str
    pic_media_id: str
    appid: str
    page: str


class MediaRef(WeComRequest):
    """A video or file attachment."""

    media_id: str


class Attachment(WeComRequest):
    """One attachment; build with :meth:`image`, :meth:`link`, :meth:`miniprogram` etc."""

    msgtype: Literal["image", "link", "miniprogram", "video", "file"]
    image: Image | None = None
    link: Link | None = None
    miniprogram: Miniprogram | None = None
    video: MediaRef | None = None
    file: MediaRef | None = None

    @classmethod
    def of_image(cls, *, media_id: str | None = None, pic_url: str | None = None) -> Attachment:
        return cls(msgtype="image", image=Image(media_id=media_id, pic_url=pic_url))

    @classmethod
    def of_link(cls, *, title: str, url: str, picurl: str | None = None, desc: str | None = None) -> Attachment:
        return cls(msgtype="link", link=Link(title=title, url=url, picurl=picurl, desc=desc))

    @classmethod
    def of_miniprogram(cls, *, title: str, pic_media_id: str, appid: str, page: str) -> Attachment:
        return cls(msgtype="miniprogram",
                   miniprogram=Miniprogram(title=title, pic_media_id=pic_media_id, appid=appid, page=page))

    @classmethod
    def of_video(cls, media_id: str) -> Attachment:
        return cls(msgtype="video", video=MediaRef(media_id=media_id))

    @classmethod
    def of_file(cls, media_id: str) -> Attachment:
        return cls(msgtype="file", file=MediaRef(media_id=media_id))


# ------------------------------------------------------------------------------------------
# Token, OAuth
# ------------------------------------------------------------------------------------------

class GetTokenResponse(WeComResponse):
    access_token: str = Field(default="", repr=False)
    expires_in: int = 7200


class GetUserInfoResponse(WeComResponse):
    """auth/getuserinfo: a member gets ``userid``; a customer ``openid`` (+ ``external_userid``)."""

    userid: str | None = Field(default=None, validation_alias=AliasChoices("userid", "UserId"))
    user_ticket: str | None = Field(default=None, repr=False)
    openid: str | None = Field(default=None, validation_alias=AliasChoices("openid", "OpenId"))
    external_userid: str | None = None


# ------------------------------------------------------------------------------------------
# Customers (externalcontact/get, batch/get_by_user, list)
# ------------------------------------------------------------------------------------------

class ExternalContact(WeComModel):
    external_userid: str
    name: str = ""
    avatar: str = ""
    type: int = 1  # 1 WeChat, 2 WeCom
    gender: int = 0
    unionid: str | None = None
    position: str | None = None
    corp_name: str | None = None
    corp_full_name: str | None = None
    external_profile: dict[str, Any] | None = None


class FollowUserTag(WeComModel):
    group_name: str = ""
    tag_name: str = ""
    type: int = 1  # 1 corp, 2 personal, 3 rule group
    tag_id: str | None = None


class FollowUser(WeComModel):
    """One member following the customer, as externalcontact/get returns it."""

    userid: str
    remark: str = ""
    description: str = ""
    createtime: int = 0
    tags: list[FollowUserTag] = Field(default_factory=list)
    remark_corp_name: str = ""
    remark_mobiles: list[str] = Field(default_factory=list)
    oper_userid: str = ""
    add_way: int = 0
    state: str = ""


class GetExternalContactResponse(PagedResponse):
    external_contact: ExternalContact
    follow_user: list[FollowUser] = Field(default_factory=list)


class FollowInfo(WeComModel):
    """The follow relation as batch/get_by_user returns it (tag ids only)."""

    userid: str
    remark: str = ""
    description: str = ""
    createtime: int = 0
    tag_id: list[str] = Field(default_factory=list)
    remark_corp_name: str = ""
    remark_mobiles: list[str] = Field(default_factory=list)
    oper_userid: str = ""
    add_way: int = 0
    state: str = ""


class ExternalContactFollow(WeComModel):
    external_contact: ExternalContact
    follow_info: FollowInfo


class BatchGetByUserResponse(PagedResponse):
    external_contact_list: list[ExternalContactFollow] = Field(default_factory=list)


class ListExternalContactResponse(WeComResponse):
    external_userid: list[str] = Field(default_factory=list)


class RemarkRequest(WeComRequest):
    userid: str
    external_userid: str
    remark: str | None = None
    description: str | None = None
    remark_company: str | None = None
    remark_mobiles: list[str] | None = None
    remark_pic_mediaid: str | None = None


# ------------------------------------------------------------------------------------------
# Corp tags
# ------------------------------------------------------------------------------------------

class CorpTag(WeComModel):
    id: str
    name: str = ""
    create_time: int = 0
    order: int = 0
    deleted: bool = False


class CorpTagGroup(WeComModel):
    group_id: str
    group_name: str = ""
    create_time: int = 0
    order: int = 0
    deleted: bool = False
    tag: list[CorpTag] = Field(default_factory=list)


class GetCorpTagListResponse(WeComResponse):
    tag_group: list[CorpTagGroup] = Field(default_factory=list)


class NewTag(WeComRequest):
    name: str
    order: int | None = None


class AddCorpTagRequest(WeComRequest):
    """Give ``group_id`` to add into a group, or ``group_name`` (new or existing by name)."""

    group_id: str | None = None
    group_name: str | None = None
    order: int | None = None
    tag: list[NewTag]
    agentid: int | None = None


class AddCorpTagResponse(WeComResponse):
    tag_group: CorpTagGroup


# ------------------------------------------------------------------------------------------
# 「联系我」 contact ways
# ------------------------------------------------------------------------------------------

class ContactWay(WeComRequest):
    """add_contact_way / update_contact_way body (update needs ``config_id``, omits type/scene)."""

    config_id: str | None = None
    type: Literal[1, 2] | None = None  # 1 single member, 2 several
    scene: Literal[1, 2] | None = None  # 1 mini program, 2 QR code
    style: int | None = None
    remark: str | None = None
    skip_verify: bool | None = None
    state: str | None = Field(default=None, max_length=30)
    user: list[str] | None = None
    party: list[int] | None = None
    is_temp: bool | None = None
    expires_in: int | None = None
    chat_expires_in: int | None = None
    unionid: str | None = None
    is_exclusive: bool | None = None
    conclusions: dict[str, Any] | None = None
    mark_source: bool | None = None


class AddContactWayResponse(WeComResponse):
    config_id: str
    qr_code: str = ""


class ContactWayInfo(WeComModel):
    config_id: str
    type: int = 0
    scene: int = 0
    style: int | None = None
    remark: str = ""
    skip_verify: bool = True
    state: str = ""
    qr_code: str = ""
    user: list[str] = Field(default_factory=list)
    party: list[int] = Field(default_factory=list)
    is_temp: bool = False
    expires_in: int | None = None
    chat_expires_in: int | None = None
    unionid: str | None = None
    conclusions: dict[str, Any] | None = None


class GetContactWayResponse(WeComResponse):
    contact_way: ContactWayInfo


class ContactWayRef(WeComModel):
    config_id: str


class ListContactWayResponse(PagedResponse):
    contact_way: list[ContactWayRef] = Field(default_factory=list)


# ------------------------------------------------------------------------------------------
# Succession (在职/离职继承)
# ------------------------------------------------------------------------------------------

class TransferCustomerItem(WeComModel):
    external_userid: str
    errcode: int = 0


class TransferCustomerResponse(WeComResponse):
    customer: list[TransferCustomerItem] = Field(default_factory=list)


class TransferResultItem(WeComModel):
    external_userid: str
    status: int = 0  # 1 done, 2 waiting, 3 refused, 4 limit reached, 5 no record
    takeover_time: int = 0


class TransferResultResponse(PagedResponse):
    customer: list[TransferResultItem] = Field(default_factory=list)


class UnassignedItem(WeComModel):
    handover_userid: str
    external_userid: str
    dimission_time: int = 0


class GetUnassignedListResponse(PagedResponse):
    info: list[UnassignedItem] = Field(default_factory=list)
    is_last: bool = True
