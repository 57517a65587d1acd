"""Models for materials/*.yaml and the static parts of sop/: policy, channels, groups, tags.

Shape and local rules live here (a time is a time, a link has a URL, a channel key fits in
WeCom's ``state``). Anything that needs another file (does this material exist? is this tag
declared?) is checked in :mod:`scrm.playbook.references`, where both files are at hand.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Collection
from datetime import date, time, timedelta
from functools import cached_property
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, Field, PrivateAttr, field_validator, model_validator

from .contenthash import material_hash
from .fields import (
    HHMM,
    ChannelKey,
    Date,
    Duration,
    Ident,
    OnHoliday,
    QuietWindow,
    Regex,
    Strict,
    TagRef,
    Url,
    UserId,
    check_tag_name,
)
from .flows import TagFilter

# --- materials ---------------------------------------------------------------------------

MaterialType = Literal["text", "link", "miniprogram", "image", "file", "quick_reply"]
Use = Literal["group", "private", "manager", "moments"]  # moments: a campaign's 朋友圈 post
RiskLevel = Literal["R1", "R2", "R3", "R4", "R5"]
"""A product's risk level, R1 (lowest) to R5; a customer's assessment C<n> allows up to R<n>."""
"""Where a material may go: into customer groups, 1:1 to a customer, or to the manager only."""

# WeCom's documented limits for mass-send content, in UTF-8 bytes.
TEXT_MAX_BYTES = 4000
LINK_TITLE_MAX_BYTES = 128
LINK_DESC_MAX_BYTES = 512
MINIPROGRAM_TITLE_MAX_BYTES = 64


def _max_bytes(limit: int, what: str) -> AfterValidator:
    def check(value: str) -> str:
        size = len(value.encode())
        if size > limit:
            raise ValueError(f"{what} is {size} bytes; WeCom allows at most {limit}")
        return value

    return AfterValidator(check)


def _matches(pattern: str, message: str) -> AfterValidator:
    """A regex check whose failure message an ops admin can act on."""
    compiled = re.compile(pattern)

    def check(value: str) -> str:
        if not compiled.fullmatch(value):
            raise ValueError(f"{message} (got {value!r})")
        return value

    return AfterValidator(check)


class Approval(Strict):
    """Compliance sign-off: who approved the content, when, and which content (its hash).

    ``hash`` is written by ``scrm materials approve``: an approval covers the content it was
    given, so a later edit of the material is not approved (see ``Material.compliance_problem``).
    """

    by: str = Field(min_length=1)
    at: Date
    hash: str | None = Field(None, pattern=r"^[0-9a-f]{64}$",
                             description="content hash at approval (written by `scrm materials approve`)")


class LinkSpec(Strict):
    title: Annotated[str, Field(min_length=1), _max_bytes(LINK_TITLE_MAX_BYTES, "link title")]
    desc: Annotated[str, _max_bytes(LINK_DESC_MAX_BYTES, "link description")] = ""
    cover: Url | None = None
    url: Url


class MiniProgramSpec(Strict):
    title: Annotated[str, Field(min_length=1), _max_bytes(MINIPROGRAM_TITLE_MAX_BYTES, "mini program title")]
    appid: Annotated[str, _matches(r"wx[0-9a-f]{16}", "a mini program appid is wx + 16 hex digits")]
    # WeCom requires the page path to carry the .html suffix in mass sends and welcomes.
    page: Annotated[
        str, _matches(r"[^\s{}]+\.html(\?[^\s{}]*)?", "page must be a path ending in .html, e.g. pages/a/b.html")
    ]
    cover: str = Field(min_length=1, description="image path under materials/ or an https URL")


class MediaSpec(Strict):
    """An image or file: a path under materials/ (uploaded when first used) or a URL."""

    path: str | None = None
    url: Url | None = None

    @model_validator(mode="after")
    def _one(self) -> MediaSpec:
        if (self.path is None) == (self.url is None):
            raise ValueError("give exactly one of path (under materials/) or url")
        if self.path is not None and (self.path.startswith("/") or ".." in self.path.split("/")):
            raise ValueError(f"path {self.path!r} must stay inside materials/")
        return self


class QuickReply(Strict):
    question: str = Field(min_length=1)
    answer: str = Field(min_length=1)


_TYPE_BLOCK = {"link": "link", "miniprogram": "miniprogram", "image": "image", "file": "file"}


class Material(Strict):
    """One item of the content library (materials/*.yaml is a list of these)."""

    id: Ident
    type: MaterialType
    title: str | None = Field(None, description="a label for people browsing the library")
    text: Annotated[str, _max_bytes(TEXT_MAX_BYTES, "text")] | None = Field(
        None, description="template; variables like {customer.name}"
    )
    link: LinkSpec | None = None
    miniprogram: MiniProgramSpec | None = None
    image: MediaSpec | None = None
    file: MediaSpec | None = None
    quick_reply: QuickReply | None = None
    interest_tags: list[TagRef] = Field(default_factory=list, description="tags set on customers who open it (radar)")
    approved: Approval | None = None
    valid_until: Date | None = None
    risk_disclosure: bool = Field(False, description="append the policy's risk disclosure (wealth products)")
    # A material with a risk level describes a product: it reaches only customers whose risk
    # assessment (C1–C5, from the CRM) is current and at least as high (sop/compliance/suitability.yaml).
    risk_level: RiskLevel | None = Field(None, description="the product's risk level R1–R5 (a product material)")
    product_category: Ident | None = Field(
        None, description="marketing consent category (wealth, loans, cards, insurance, events …)")
    channels: list[Use] = Field(default_factory=lambda: list[Use](["private"]))
    # Who the sidebar offers it to in a 1:1 chat: customers whose tags satisfy the filter (the
    # same all/any/none as a path SOP's when:). A group has no tags of its own, so a material with
    # an audience rule is not for groups (checked below).
    for_tags: TagFilter | None = Field(None, description="the customers' tags it suits (sidebar, 1:1 chats)")
    # A link material with a survey opens the service's own feedback form (sop/feedback.yaml)
    # for the customer it was sent to; its link.url is where the thank-you page points onwards.
    survey: Ident | None = Field(None, description="a survey of sop/feedback.yaml this link opens (1:1 only)")
    # Set by the loader when a content rule (sop/compliance/claims.yaml) withholds the material:
    # a banned claim, or an approval without content hash where one is required. The running
    # service keeps sending everything else; this material is refused like an unapproved one.
    _withheld: str | None = PrivateAttr(None)

    @cached_property
    def content_hash(self) -> str:
        """The hash an approval of this content records (:mod:`scrm.playbook.contenthash`)."""
        return material_hash(self)

    @model_validator(mode="after")
    def _type_matches_blocks(self) -> Material:
        blocks = {"link": self.link, "miniprogram": self.miniprogram, "image": self.image, "file": self.file}
        wanted = _TYPE_BLOCK.get(self.type)
        for name, value in blocks.items():
            if name == wanted and value is None:
                raise ValueError(f"type {self.type} needs a '{name}:' block")
            if name != wanted and value is not None:
                raise ValueError(f"'{name}:' does not belong to a {self.type} material")
        if self.type == "text" and not self.text:
            raise ValueError("type text needs 'text:'")
        if (self.type == "quick_reply") != (self.quick_reply is not None):
            raise ValueError("'quick_reply:' goes with type quick_reply, and only there")
        if self.approved and self.valid_until and self.valid_until < self.approved.at:
            raise ValueError(f"valid_until {self.valid_until} is before the approval date {self.approved.at}")
        if not self.channels:
            raise ValueError("channels must name at least one of group, private, manager, moments")
        if self.for_tags is not None and "group" in self.channels:
            raise ValueError("for_tags filters a customer's tags and a group has none: "
                             "drop group from channels or the for_tags rule")
        if self.survey is not None and (self.type != "link" or self.channels != ["private"]):
            # The form is personal: only a 1:1 send names the customer who answers it.
            raise ValueError("a survey material is type link with channels [private]")
        return self

    def suits(self, tags: Collection[str]) -> bool:
        """A customer with these tags is in the material's audience (no ``for_tags``: everyone)."""
        return self.for_tags is None or self.for_tags.matches(tags)

    def compliance_problem(self, today: date) -> str | None:
        """Why this material may not be sent on ``today`` (``None`` when it may)."""
        if self.approved is None:
            return f"material {self.id!r} is not approved (add approved: {{by, at}})"
        if self.approved.hash is not None and self.approved.hash != self.content_hash:
            return (f"material {self.id!r} changed since it was approved on {self.approved.at}; "
                    f"run `scrm materials approve {self.id}`")
        if self._withheld is not None:
            return self._withheld
        if self.approved.at > today:
            return f"material {self.id!r} is approved only from {self.approved.at}"
        if self.valid_until is not None and self.valid_until < today:
            return f"material {self.id!r} expired on {self.valid_until} (valid_until)"
        return None

    def expiry_notice(self, today: date, horizon_days: int) -> str | None:
        """That this material, sendable ``today``, expires within ``horizon_days`` (else None)."""
        if self.valid_until is None or self.compliance_problem(today) is not None:
            return None
        left = (self.valid_until - today).days
        return f"material {self.id!r} expires on {self.valid_until} (in {left} days)" if left < horizon_days else None


# --- policy ------------------------------------------------------------------------------


class Caps(Strict):
    """Contact caps per customer across every SOP and manager."""

    per_day: int = Field(1, ge=1)
    per_week: int = Field(3, ge=1)
    per_month: int = Field(8, ge=1)
    # WeCom: a customer receives at most "days in the month" corp mass messages a month unless
    # the tenant changed its 群发规则 (PROTOCOL.md §4, 群发); the older "4 a month" rule is obsolete.
    wecom_monthly: int | None = Field(
        None, ge=1,
        description="WeCom's monthly receive limit for mass messages per customer; "
                    "empty = the number of days in the month (WeCom's default rule)")

    def wecom_cap(self, day: date) -> int:
        """WeCom's receive limit for the month of ``day``."""
        return self.wecom_monthly or calendar.monthrange(day.year, day.month)[1]

    @model_validator(mode="after")
    def _ordered(self) -> Caps:
        if not self.per_day <= self.per_week <= self.per_month:
            raise ValueError("caps must satisfy per_day <= per_week <= per_month")
        return self


class Policy(Strict):
    """sop/policy.yaml: rules every SOP obeys."""

    timezone: str = "Asia/Shanghai"
    quiet_hours: QuietWindow
    caps: Caps = Field(default_factory=Caps)
    manager_daily_tasks: int = Field(30, ge=1, description="task cards one manager gets per day at most")
    opt_out_tag: TagRef = Field(description="customers with this tag get no SOP messages")
    risk_disclosure: str = Field("", description="appended to materials with risk_disclosure: true")
    holidays: str = Field("holidays.yaml", description="holiday file, relative to sop/")
    on_holiday: OnHoliday = "next_workday"
    misfire_grace: Duration = Field(timedelta(hours=2), description="default late-run window for calendars")
    ops_contacts: list[UserId] = Field(
        default_factory=list, max_length=20,
        description="members told once a day which materials in use are expired, unapproved or expiring",
    )
    ops_notice_at: HHMM = Field(time(9, 0), description="local time of that daily notice")

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}, e.g. Asia/Shanghai") from None
        return value

    @field_validator("holidays")
    @classmethod
    def _inside(cls, value: str) -> str:
        if value.startswith("/") or ".." in value.split("/"):
            raise ValueError("holidays must be a file inside sop/")
        return value


# --- channels ----------------------------------------------------------------------------


class Channel(Strict):
    """A 渠道活码: a contact QR code whose key comes back as ``state`` on every new contact."""

    name: str = Field(min_length=1)
    managers: list[UserId] = Field(default_factory=list, max_length=100)
    department: int | None = Field(None, ge=1)
    skip_verify: bool = True
    tags: list[TagRef] = Field(default_factory=list)
    welcome: Ident | None = Field(None, description="material id; the file's default_welcome if absent")
    active: bool = True

    @model_validator(mode="after")
    def _who(self) -> Channel:
        if bool(self.managers) == (self.department is not None):
            raise ValueError("give either managers (userids) or department, not both or neither")
        return self


class ChannelsFile(Strict):
    default_welcome: Ident
    channels: dict[ChannelKey, Channel]


# --- group types -------------------------------------------------------------------------


class Classify(Strict):
    """How an existing or new customer group is recognised as this type (any rule matches)."""

    name: Regex | None = Field(None, description="regular expression searched in the group name")
    owners: list[UserId] = Field(default_factory=list)
    chats: list[str] = Field(default_factory=list, description="explicit chat ids")

    @model_validator(mode="after")
    def _some(self) -> Classify:
        if not (self.name or self.owners or self.chats):
            raise ValueError("give at least one of name, owners, chats")
        return self


class QrPool(Strict):
    """A group QR code (加入群聊) spanning up to five chats, optionally creating new ones."""

    size: int = Field(ge=1, le=5, description="WeCom allows at most 5 chats per join QR code")
    auto_create_room: bool = False
    room_base_name: str | None = None
    room_base_id: int | None = Field(None, ge=1)

    @model_validator(mode="after")
    def _base(self) -> QrPool:
        if self.auto_create_room and not self.room_base_name:
            raise ValueError("auto_create_room needs room_base_name (WeCom names new groups after it)")
        return self


class GroupType(Strict):
    name: str = Field(min_length=1)
    classify: Classify
    member_cap: int = Field(500, ge=2, le=2000)
    lifetime_days: int | None = Field(None, ge=1, description="event groups (活动快闪群): days until closing")
    payday: int | None = Field(None, ge=1, le=31, description="default day of month for 'payday'")
    welcome: Ident | None = None
    qr_pool: QrPool | None = None


class GroupsFile(Strict):
    group_types: dict[Ident, GroupType]


# --- tags --------------------------------------------------------------------------------


class Band(Strict):
    below: float | None = Field(None, description="upper bound (exclusive); omit on the last band")
    tag: Annotated[str, AfterValidator(check_tag_name)]


class TagGroup(Strict):
    """A WeCom tag group. ``crm`` groups are set *and removed* by CRM sync; ``manager`` never removed."""

    owner: Literal["crm", "manager"]
    source: Annotated[str, _matches(r"crm\.[a-z_]+", "from: names a CRM attribute, e.g. crm.tier")] | None = Field(
        None, alias="from", description="CRM attribute"
    )
    map: dict[str, str] = Field(default_factory=dict, description="CRM value → tag name")
    bands: list[Band] = Field(default_factory=list, description="numeric ranges → tag name")
    tags: list[str] = Field(default_factory=list, description="tag names (manager groups)")

    @field_validator("tags")
    @classmethod
    def _names(cls, value: list[str]) -> list[str]:
        return [check_tag_name(v) for v in value]

    @field_validator("map")
    @classmethod
    def _map_names(cls, value: dict[str, str]) -> dict[str, str]:
        return {k: check_tag_name(v) for k, v in value.items()}

    @model_validator(mode="after")
    def _consistent(self) -> TagGroup:
        if self.owner == "crm":
            if not self.source or not (self.map or self.bands):
                raise ValueError("a crm tag group needs from: crm.<attribute> and map or bands")
            if self.map and self.bands:
                raise ValueError("use map or bands, not both")
        elif self.source or self.map or self.bands:
            raise ValueError("a manager tag group lists tags: only (from/map/bands are for crm groups)")
        elif not self.tags:
            raise ValueError("a manager tag group needs tags:")
        bounds = [b.below for b in self.bands]
        if bounds and (bounds[-1] is not None or None in bounds[:-1]):
            raise ValueError("every band but the last needs below:, and the last has none")
        numbers = [b for b in bounds if b is not None]
        if numbers != sorted(set(numbers)):
            raise ValueError("bands must be in increasing order of below:")
        return self

    def tag_names(self) -> list[str]:
        """Every tag this group can hold, in file order, without repeats."""
        names = [*self.map.values(), *(b.tag for b in self.bands), *self.tags]
        return list(dict.fromkeys(names))


class TagsFile(Strict):
    groups: dict[str, TagGroup]

    @field_validator("groups")
    @classmethod
    def _group_names(cls, value: dict[str, TagGroup]) -> dict[str, TagGroup]:
        for name in value:
            check_tag_name(name, "tag group")
        return value
