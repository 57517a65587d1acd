"""Groups tables: customer groups, their members, and the group QR pools (``scrm groups pools sync``)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from scrm.adapters.db.base import Base


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

    # A customer's groups (the sidebar's 1:1 panel); the primary key leads with chat_id (console_0005).
    # A day's joins and quits (the cockpit's roll-up, console_0010).
    __table_args__ = (Index("ix_group_member_member", "member_id"), Index("ix_group_member_joined_at", "joined_at"),
                      Index("ix_group_member_left_at", "left_at"))


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
