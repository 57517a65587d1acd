"""Timeline table: what happened to a customer, group or member, for people to read."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from scrm.adapters.db.base import Base, BigId, JsonDict


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
