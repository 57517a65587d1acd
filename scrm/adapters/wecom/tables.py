"""The WeCom adapter's own tables: the shared access token and the uploaded-media cache."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from scrm.adapters.db.base import Base


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


class RateSlot(Base):
    """Calls made in one time slice under one WeCom limit, counted by every instance together
    (``scrm.adapters.wecom.shared_limits``): WeCom counts per corp and per member, not per process."""

    __tablename__ = "rate_slot"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    slot: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    used: Mapped[int] = mapped_column(Integer, default=0)
    forget_at: Mapped[int] = mapped_column(BigInteger)  # epoch seconds: the count is no longer needed
