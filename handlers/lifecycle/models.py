"""``customer_segment``: each customer's tier, segments, grade, RFM bands and stage, as the last
nightly runs left them, plus what hysteresis and the AUM trend need from earlier runs."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, Date, Float, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from scrm.adapters.db.base import Base


class CustomerSegment(Base):
    """One customer (external contact) as the segmentation sees them."""

    __tablename__ = "customer_segment"

    external_userid: Mapped[str] = mapped_column(String(128), primary_key=True)
    crm_id: Mapped[str | None] = mapped_column(String(128), default=None)
    tier: Mapped[str | None] = mapped_column(String(32), default=None)
    segments: Mapped[list[str]] = mapped_column(JSON, default=list)
    grade: Mapped[str | None] = mapped_column(String(16), default=None)
    score: Mapped[float] = mapped_column(Float, default=0.0)
    rfm: Mapped[str | None] = mapped_column(String(8), default=None)
    stage: Mapped[str | None] = mapped_column(String(32), default=None)
    stage_since: Mapped[date | None] = mapped_column(Date, default=None)
    # The AUM trend compares today's AUM with a reading trend_days to 2×trend_days old: ``aum_base``
    # is that reading; ``aum_mid`` (taken on ``aum_mid_at``) becomes the base once it is old enough.
    aum: Mapped[float | None] = mapped_column(Float, default=None)
    aum_base: Mapped[float | None] = mapped_column(Float, default=None)
    aum_mid: Mapped[float | None] = mapped_column(Float, default=None)
    aum_mid_at: Mapped[date | None] = mapped_column(Date, default=None)
    # The run that last changed the row: a run that finds the same result leaves it alone.
    computed_at: Mapped[datetime]

    __table_args__ = (Index("ix_customer_segment_stage", "stage"),)
