"""Tag tables: WeCom's corp tag groups and tags, and the tags currently on each follow relation."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from scrm.adapters.db.base import Base


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
    # The console's search by tag starts from the tag (migration console_0004).
    __table_args__ = (Index("ix_follow_tag_customer", "external_userid", "tag_id"),
                      Index("ix_follow_tag_tag", "tag_id", "external_userid"))
