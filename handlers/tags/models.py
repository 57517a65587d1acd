"""Tag catalog tables: WeCom's corp tag groups and tags, mirrored."""

from __future__ import annotations

from sqlalchemy import BigInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from scrm.db.models import Base


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
