"""SQLAlchemy 2 models: the durable state of the service.

A leaf apart from :mod:`scrm.db.types`. Every datetime is UTC (``UTCDateTime``). JSON columns use
the generic ``JSON`` type (TEXT on SQLite, json on PostgreSQL).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from scrm.db.types import UTCDateTime

JsonDict = dict[str, Any]

# Integer primary keys: BIGINT on PostgreSQL, INTEGER (rowid alias) on SQLite.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime(), JsonDict: JSON()}  # noqa: RUF012 (SQLAlchemy's API)


# --------------------------------------------------------------------------------------------
# Pipeline: inbox, outbox, scheduler
# --------------------------------------------------------------------------------------------


class InboxEvent(Base):
    """One inbound event (WeCom callback, scheduler tick, CRM change), durable before ack."""

    __tablename__ = "inbox_event"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    dedup_key: Mapped[str] = mapped_column(String(512), unique=True)
    source: Mapped[str] = mapped_column(String(16), default="wecom")  # wecom | scheduler | crm
    received_at: Mapped[datetime]
    raw: Mapped[str] = mapped_column(Text)
    msg_type: Mapped[str] = mapped_column(String(64), default="")
    event: Mapped[str] = mapped_column(String(64), default="")
    change_type: Mapped[str] = mapped_column(String(64), default="")
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending | done | dead
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    locked_until: Mapped[datetime | None] = mapped_column(default=None)
    lease_owner: Mapped[str | None] = mapped_column(String(64), default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    done_at: Mapped[datetime | None] = mapped_column(default=None)

    __table_args__ = (Index("ix_inbox_due", "status", "next_attempt_at"),)


# Statuses an outbox action can still be claimed in; the claim index covers exactly these rows.
OUTBOX_UNFINISHED = ("pending", "sending", "unknown")
OUTBOX_UNFINISHED_SQL = "status IN ('pending', 'sending', 'unknown')"


class OutboxAction(Base):
    """One side effect on WeCom (or the CRM webhook), sent at most once per idempotency key."""

    __tablename__ = "outbox_action"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    idempotency_key: Mapped[str] = mapped_column(String(512), unique=True)
    kind: Mapped[str] = mapped_column(String(64))
    payload: Mapped[JsonDict]
    priority: Mapped[int] = mapped_column(Integer, default=100)  # lower first; welcome = 0
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    locked_until: Mapped[datetime | None] = mapped_column(default=None)
    lease_owner: Mapped[str | None] = mapped_column(String(64), default=None)
    result: Mapped[JsonDict | None] = mapped_column(default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    wecom_msgid: Mapped[str | None] = mapped_column(String(128), default=None)
    # Ordering lane: actions with the same lane are sent strictly in id order (e.g. per customer).
    lane: Mapped[str | None] = mapped_column(String(256), default=None)
    not_after: Mapped[datetime | None] = mapped_column(default=None)  # e.g. welcome code expiry
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None] = mapped_column(default=None)

    __table_args__ = (
        Index("ix_outbox_due", "status", "priority", "next_attempt_at"),
        Index("ix_outbox_lane", "lane", "id"),
        # The claim's order over unfinished actions only: the claim walks it and stops after a
        # batch, instead of sorting every due row (150 ms per claim with 100,000 queued on
        # SQLite, 4 ms with this), and sent history never enters it.
        Index("ix_outbox_claim", "priority", "next_attempt_at", "id",
              sqlite_where=text(OUTBOX_UNFINISHED_SQL), postgresql_where=text(OUTBOX_UNFINISHED_SQL)),
    )


class DueJob(Base):
    """A scheduled job; claimed with a lease so several instances may tick safely."""

    __tablename__ = "due_job"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    job_key: Mapped[str] = mapped_column(String(256), unique=True)
    kind: Mapped[str] = mapped_column(String(64))
    trigger: Mapped[JsonDict]
    payload: Mapped[JsonDict] = mapped_column(default=dict)
    next_run_at: Mapped[datetime | None]
    locked_until: Mapped[datetime | None] = mapped_column(default=None)
    lease_owner: Mapped[str | None] = mapped_column(String(64), default=None)
    last_run_at: Mapped[datetime | None] = mapped_column(default=None)
    misfire_grace_s: Mapped[int] = mapped_column(Integer, default=3600)
    enabled: Mapped[bool] = mapped_column(default=True)

    __table_args__ = (Index("ix_due_job_next", "enabled", "next_run_at"),)


class Occurrence(Base):
    """Idempotency record for one occurrence of a job or SOP step for one target."""

    __tablename__ = "occurrence"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    job_key: Mapped[str] = mapped_column(String(256))
    occurrence_key: Mapped[str] = mapped_column(String(512))
    outcome: Mapped[str] = mapped_column(String(32))  # done | skipped | failed
    reason: Mapped[str | None] = mapped_column(Text, default=None)
    at: Mapped[datetime]

    __table_args__ = (UniqueConstraint("job_key", "occurrence_key", name="uq_occurrence"),)


class AccessToken(Base):
    """WeCom access token, shared by every instance (refreshed single-flight)."""

    __tablename__ = "access_token"

    app: Mapped[str] = mapped_column(String(64), primary_key=True)
    token: Mapped[str] = mapped_column(String(1024), default="")
    expires_at: Mapped[datetime | None] = mapped_column(default=None)
    refreshing_until: Mapped[datetime | None] = mapped_column(default=None)


class MediaCache(Base):
    """Uploaded media ids (valid 3 days in WeCom) keyed by content hash."""

    __tablename__ = "media_cache"

    content_hash: Mapped[str] = mapped_column(String(128), primary_key=True)
    media_type: Mapped[str] = mapped_column(String(16))
    media_id: Mapped[str] = mapped_column(String(256))
    uploaded_at: Mapped[datetime]
    expires_at: Mapped[datetime]


class Timeline(Base):
    """What happened to a customer, a group or a manager, in words for people."""

    __tablename__ = "timeline"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    subject_type: Mapped[str] = mapped_column(String(16))  # customer | group | member
    subject_id: Mapped[str] = mapped_column(String(128))
    at: Mapped[datetime]
    kind: Mapped[str] = mapped_column(String(64))
    detail: Mapped[JsonDict] = mapped_column(default=dict)
    inbox_event_id: Mapped[int | None] = mapped_column(BigId, default=None)

    __table_args__ = (
        Index("ix_timeline_subject", "subject_type", "subject_id", "at"),
        # One entry per (inbox event, subject, kind): replays and retries write nothing twice.
        UniqueConstraint("inbox_event_id", "subject_type", "subject_id", "kind", name="uq_timeline_event"),
    )


# --------------------------------------------------------------------------------------------
# WeCom mirror: members, customers, follows, tags, groups
# --------------------------------------------------------------------------------------------


class Member(Base):
    __tablename__ = "member"

    userid: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(128), default="")
    department: Mapped[str] = mapped_column(String(128), default="")
    team_lead: Mapped[str | None] = mapped_column(String(64), default=None)
    status: Mapped[str] = mapped_column(String(16), default="active")


class Customer(Base):
    __tablename__ = "customer"

    external_userid: Mapped[str] = mapped_column(String(128), primary_key=True)
    name: Mapped[str] = mapped_column(String(128), default="")
    unionid: Mapped[str | None] = mapped_column(String(128), default=None, index=True)
    type: Mapped[int] = mapped_column(Integer, default=1)
    gender: Mapped[int] = mapped_column(Integer, default=0)
    corp_name: Mapped[str | None] = mapped_column(String(128), default=None)
    crm_id: Mapped[str | None] = mapped_column(String(128), default=None, index=True)
    updated_at: Mapped[datetime]


class Follow(Base):
    """The relationship between one client manager and one customer."""

    __tablename__ = "follow"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    userid: Mapped[str] = mapped_column(String(64))
    external_userid: Mapped[str] = mapped_column(String(128))
    remark: Mapped[str] = mapped_column(String(128), default="")
    description: Mapped[str] = mapped_column(String(512), default="")
    state: Mapped[str] = mapped_column(String(64), default="")
    add_way: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(16), default="active")  # active|lost|removed|transferred
    status_at: Mapped[datetime | None] = mapped_column(default=None)
    status_reason: Mapped[str | None] = mapped_column(String(128), default=None)
    last_contact_at: Mapped[datetime | None] = mapped_column(default=None)

    __table_args__ = (
        UniqueConstraint("userid", "external_userid", name="uq_follow"),
        Index("ix_follow_customer", "external_userid"),
    )


class TagGroup(Base):
    __tablename__ = "tag_group"

    group_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    order: Mapped[int] = mapped_column(BigInteger, default=0)
    owner: Mapped[str] = mapped_column(String(16), default="manager")  # crm | manager
    deleted: Mapped[bool] = mapped_column(default=False)


class Tag(Base):
    __tablename__ = "tag"

    tag_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    group_id: Mapped[str] = mapped_column(String(128), index=True)
    name: Mapped[str] = mapped_column(String(64))
    order: Mapped[int] = mapped_column(BigInteger, default=0)
    deleted: Mapped[bool] = mapped_column(default=False)


class FollowTag(Base):
    """Current corp tags on one follow relationship (as WeCom last told us)."""

    __tablename__ = "follow_tag"

    userid: Mapped[str] = mapped_column(String(64), primary_key=True)
    external_userid: Mapped[str] = mapped_column(String(128), primary_key=True)
    tag_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    added_at: Mapped[datetime]

    # The primary key leads with userid; reading a customer's tags (SOP planner, CRM sync) needs
    # this one, else every batch scans the table (migration sop_0002_plan_idx).
    __table_args__ = (Index("ix_follow_tag_customer", "external_userid", "tag_id"),)


class GroupChat(Base):
    __tablename__ = "group_chat"

    chat_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    name: Mapped[str] = mapped_column(String(256), default="")
    owner: Mapped[str] = mapped_column(String(64), default="")
    group_type: Mapped[str | None] = mapped_column(String(64), default=None)
    created_at: Mapped[datetime | None] = mapped_column(default=None)
    member_version: Mapped[str] = mapped_column(String(64), default="")
    member_count: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16), default="active")  # active | dismissed
    updated_at: Mapped[datetime]


class GroupMember(Base):
    __tablename__ = "group_member"

    chat_id: Mapped[str] = mapped_column(String(128), ForeignKey("group_chat.chat_id"), primary_key=True)
    member_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    type: Mapped[int] = mapped_column(Integer, default=2)  # 1 member, 2 external contact
    join_scene: Mapped[int | None] = mapped_column(Integer, default=None)
    joined_at: Mapped[datetime | None] = mapped_column(default=None)
    left_at: Mapped[datetime | None] = mapped_column(default=None)
    quit_scene: Mapped[int | None] = mapped_column(Integer, default=None)


# --------------------------------------------------------------------------------------------
# CRM
# --------------------------------------------------------------------------------------------


class CrmCustomer(Base):
    __tablename__ = "crm_customer"

    crm_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    attributes: Mapped[JsonDict] = mapped_column(default=dict)
    unionid: Mapped[str | None] = mapped_column(String(128), default=None, index=True)
    updated_at: Mapped[datetime]


class CrmEvent(Base):
    __tablename__ = "crm_event"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(256), unique=True)
    crm_id: Mapped[str] = mapped_column(String(128), index=True)
    kind: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime]
    payload: Mapped[JsonDict] = mapped_column(default=dict)


class Binding(Base):
    """CRM customer ↔ WeCom external contact."""

    __tablename__ = "binding"

    crm_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    external_userid: Mapped[str] = mapped_column(String(128), index=True)
    source: Mapped[str] = mapped_column(String(32))  # unionid | explicit | direct
    bound_at: Mapped[datetime]


# --------------------------------------------------------------------------------------------
# Radar
# --------------------------------------------------------------------------------------------


class RadarClick(Base):
    __tablename__ = "radar_click"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    token_id: Mapped[str] = mapped_column(String(128), index=True)
    material_id: Mapped[str] = mapped_column(String(128), index=True)
    sender: Mapped[str] = mapped_column(String(64), default="")
    external_userid: Mapped[str | None] = mapped_column(String(128), default=None)
    viewer_userid: Mapped[str | None] = mapped_column(String(64), default=None)
    occurrence: Mapped[str | None] = mapped_column(String(512), default=None)
    at: Mapped[datetime]


# --------------------------------------------------------------------------------------------
# Lifecycle: channel contact ways and group QR pools (scrm channels sync, scrm groups pools sync)
# --------------------------------------------------------------------------------------------


class ChannelWay(Base):
    """A channel's 「联系我」 contact way in WeCom; ``key`` is the WeCom ``state`` (≤30 chars)."""

    __tablename__ = "channel_way"

    key: Mapped[str] = mapped_column(String(30), primary_key=True)
    name: Mapped[str] = mapped_column(String(128), default="")
    config_id: Mapped[str | None] = mapped_column(String(128), default=None)
    qr_code: Mapped[str] = mapped_column(String(512), default="")
    # Hash of the contact-way body last pushed: sync updates WeCom only when it changed.
    spec_hash: Mapped[str] = mapped_column(String(64), default="")
    status: Mapped[str] = mapped_column(String(16), default="active")  # active | deleted
    synced_at: Mapped[datetime | None] = mapped_column(default=None)


class GroupPool(Base):
    """A group type's 「加入群聊」 QR pool (≤5 chats with room) and its group welcome template."""

    __tablename__ = "group_pool"

    group_type: Mapped[str] = mapped_column(String(64), primary_key=True)
    config_id: Mapped[str | None] = mapped_column(String(128), default=None)
    qr_code: Mapped[str] = mapped_column(String(512), default="")
    state: Mapped[str] = mapped_column(String(30), default="")
    chat_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    # True while no group of the type has room and the owner was asked to open a new one.
    needs_room: Mapped[bool] = mapped_column(default=False)
    welcome_template_id: Mapped[str | None] = mapped_column(String(128), default=None)
    welcome_hash: Mapped[str] = mapped_column(String(64), default="")
    synced_at: Mapped[datetime | None] = mapped_column(default=None)
    updated_at: Mapped[datetime | None] = mapped_column(default=None)
