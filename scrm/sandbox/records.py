"""Plain records the sandbox state is made of. Times are POSIX seconds (floats) from the Clock.

WeCom replies carry integer timestamps; routes convert with ``int()`` at the edge.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Literal

Json = dict[str, Any]


@dataclass
class Limits:
    """Tunable WeCom limits; tests shrink them (e.g. ``follow_user_page=2``)."""

    follow_user_page: int = 500  # externalcontact/get pages follow_user beyond this many
    token_ttl_s: float = 7200.0
    welcome_code_ttl_s: float = 20.0
    oauth_code_ttl_s: float = 300.0
    response_code_ttl_s: float = 72 * 3600.0
    media_ttl_s: float = 3 * 86400.0
    moment_job_ttl_s: float = 86400.0
    moment_job_delay_s: float = 0.0  # how long a moment job reports "in progress" (status 2)
    member_msgs_per_minute: int = 30
    member_msgs_per_hour: int = 1000
    max_corp_tags: int = 3000
    reminds_per_day: int = 3
    transfer_takeover_s: float = 86400.0  # 在职继承: automatic takeover after 24 h
    transfers_per_90_days: int = 2


@dataclass
class Member:
    """A corp member (成员), e.g. a client manager."""

    userid: str
    name: str
    department: list[int] = field(default_factory=lambda: [1])
    position: str = ""
    status: Literal["active", "resigned"] = "active"
    dimission_time: float = 0.0
    leader_in: list[int] = field(default_factory=list)  # departments the member leads (部门负责人)
    main_department: int | None = None  # None: the first of ``department``

    @property
    def main(self) -> int:
        return self.main_department if self.main_department is not None else (self.department or [1])[0]


@dataclass
class Department:
    """A department (部门) of the address book; ``parentid`` 0 for the root (id 1)."""

    id: int
    name: str
    parentid: int = 0
    order: int = 0


@dataclass
class Customer:
    """An external contact (客户). ``type`` 1 = WeChat user, 2 = WeCom user."""

    external_userid: str
    name: str
    type: int = 1
    gender: int = 0
    unionid: str = ""
    openid: str = ""
    avatar: str = ""
    position: str = ""
    corp_name: str = ""
    corp_full_name: str = ""


@dataclass
class Follow:
    """One member ↔ customer relation (follow_user), with the member's remark and corp tags."""

    userid: str
    external_userid: str
    createtime: float
    remark: str = ""
    description: str = ""
    remark_corp_name: str = ""
    remark_mobiles: list[str] = field(default_factory=list)
    tag_ids: list[str] = field(default_factory=list)
    oper_userid: str = ""
    add_way: int = 0
    state: str = ""
    half: bool = False  # add_half_external_contact: the member has not confirmed yet


@dataclass
class Tag:
    """A corp tag (企业标签)."""

    id: str
    name: str
    group_id: str
    create_time: float
    order: int = 0
    deleted: bool = False
    created_by: Literal["app", "admin"] = "app"


@dataclass
class TagGroup:
    """A corp tag group; it lives while it has at least one live tag."""

    group_id: str
    group_name: str
    create_time: float
    order: int = 0
    deleted: bool = False
    created_by: Literal["app", "admin"] = "app"
    tag_ids: list[str] = field(default_factory=list)


@dataclass
class ContactWay:
    """A 「联系我」 configuration (add_contact_way)."""

    config_id: str
    create_time: float
    body: Json  # the validated fields as WeCom echoes them in get_contact_way
    is_temp: bool = False
    expires_at: float = 0.0


@dataclass
class JoinWay:
    """A 「加入群聊」 configuration (groupchat/add_join_way)."""

    config_id: str
    create_time: float
    body: Json


@dataclass
class GroupMember:
    """A member of a customer group; ``type`` 1 = corp member, 2 = external."""

    userid: str
    type: int
    join_time: float
    join_scene: int = 1  # groupchat/get numbering: 1 直接邀请, 2 邀请链接, 3 扫码
    invitor: str = ""
    state: str = ""
    group_nickname: str = ""
    name: str = ""
    unionid: str = ""


@dataclass
class GroupChat:
    """A customer group (客户群)."""

    chat_id: str
    name: str
    owner: str
    create_time: float
    notice: str = ""
    members: dict[str, GroupMember] = field(default_factory=dict)
    admins: list[str] = field(default_factory=list)
    status: int = 0  # 0 normal, 1 离职待继承, 2 离职继承中, 3 离职继承完成
    dismissed: bool = False
    version_seq: int = 0

    @property
    def member_version(self) -> str:
        """An opaque version that changes with every membership change (as WeCom's md5 does)."""
        return hashlib.md5(f"{self.chat_id}:{self.version_seq}".encode()).hexdigest()


@dataclass
class CodeGrant:
    """A short-lived single-use code: welcome code, OAuth code or template-card response code."""

    code: str
    issued_at: float
    ttl_s: float
    userid: str = ""
    external_userid: str = ""
    openid: str = ""
    ref: str = ""  # response codes: the card's msgid or task_id
    used: bool = False

    def valid(self, now: float) -> bool:
        return not self.used and now < self.issued_at + self.ttl_s


@dataclass
class Token:
    """An access token; ``revoked`` models WeCom invalidating it early."""

    token: str
    expires_at: float
    revoked: bool = False


@dataclass
class Media:
    """An uploaded temporary media file (kept 3 days)."""

    media_id: str
    type: str
    filename: str
    size: int
    created_at: float


@dataclass
class MassTask:
    """One sender's share of a mass-send (企业群发) task; status 0 未发送, 2 已发送."""

    userid: str
    status: int = 0
    send_time: float = 0.0


@dataclass
class SendResult:
    """One target of a mass send; status 0 未发送, 1 已发送, 2 非好友, 3 超过接收上限."""

    userid: str
    target: str  # external_userid (single) or chat_id (group)
    status: int = 0
    send_time: float = 0.0


@dataclass
class MsgTemplate:
    """A mass-send created by add_msg_template; nothing is sent until senders confirm."""

    msgid: str
    chat_type: Literal["single", "group"]
    create_time: float
    text: Json
    attachments: list[Json]
    tasks: dict[str, MassTask] = field(default_factory=dict)
    results: list[SendResult] = field(default_factory=list)
    reminds: list[float] = field(default_factory=list)
    cancelled: bool = False
    creator: str = ""  # empty: created through the API (create_type 0)


@dataclass
class Delivery:
    """A message that reached (or was dropped before reaching) one recipient.

    ``kind``: app (message/send), welcome (send_welcome_msg), mass (confirmed 群发),
    card_update (update_template_card). ``dropped`` is '' when delivered, else the reason.
    """

    kind: str
    sender: str
    to: str
    msgid: str
    msgtype: str
    content: Json
    at: float
    dropped: str = ""


@dataclass
class Card:
    """A template card sent by message/send (for update_template_card and button events)."""

    msgid: str
    task_id: str
    card_type: str
    recipients: list[str]
    card: Json
    updates: list[Json] = field(default_factory=list)


@dataclass
class MomentTask:
    """An add_moment_task job."""

    jobid: str
    created_at: float
    body: Json
    moment_id: str
    invalid_senders: list[str] = field(default_factory=list)
    invalid_external_tags: list[str] = field(default_factory=list)
    # The valid senders asked to post it (each gets a task in the WeCom client), and when each
    # published (get_moment_task: publish_status 1); WeCom has no callback for publishing.
    senders: list[str] = field(default_factory=list)
    published: dict[str, float] = field(default_factory=dict)


@dataclass
class Transfer:
    """A customer succession (在职/离职继承); status 1 完毕, 2 等待接替, 3 拒绝, 4 上限."""

    handover_userid: str
    takeover_userid: str
    external_userid: str
    started_at: float
    status: int = 2
    takeover_time: float = 0.0
    resigned: bool = False


@dataclass
class ReceivedCall:
    """A call that succeeded (errcode 0), in arrival order: what the sandbox acted on."""

    path: str
    method: str
    query: dict[str, str]
    body: Json
    at: float
