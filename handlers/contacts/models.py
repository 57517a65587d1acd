"""Contacts tables: the staff directory (members), customers, follow relations, and the channel
contact ways (``scrm channels sync``)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Integer, String, UniqueConstraint, func
from sqlalchemy.orm import Mapped, mapped_column

from scrm.adapters.db.base import Base, BigId


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


# The console's name search (a prefix, case-insensitive) walks this index in name order, keyset
# paginated (migration console_0004). On PostgreSQL the key is ``lower(name) COLLATE "C"``: byte
# order, so a prefix is one index range whatever collation the database was created with.
Index("ix_customer_name_key", func.lower(Customer.name), Customer.external_userid)


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
        # Relations added / ended in a period: the cockpit's live day, the nightly roll-up (console_0005).
        Index("ix_follow_created_at", "created_at"),
        Index("ix_follow_status_at", "status_at"),
    )


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
