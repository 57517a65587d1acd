"""Backfill tables: one run per corp (the first start adopts it once) and each stage's durable
position, written in the same transaction as the page it follows, so a crash resumes there."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from scrm.adapters.db.base import Base, JsonDict


class BackfillRun(Base):
    """The backfill of one corp: ``running`` until every stage is done, then ``done`` for good
    (the automatic start never runs it again; ``scrm backfill --again`` does)."""

    __tablename__ = "backfill_run"

    corp_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    status: Mapped[str] = mapped_column(String(16), default="running")  # running | done | failed
    trigger: Mapped[str] = mapped_column(String(16), default="cli")  # cli | start
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
    # Who runs it now: a second instance (or a command beside the service) waits its turn.
    lease_owner: Mapped[str | None] = mapped_column(String(128), default=None)
    lease_until: Mapped[datetime | None] = mapped_column(default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)


class BackfillStage(Base):
    """Where one stage of a corp's backfill stands: ``position`` is the stage's own cursor (the
    member chunk and WeCom's ``next_cursor``, or the time window), saved with each page's rows."""

    __tablename__ = "backfill_stage"

    corp_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    stage: Mapped[str] = mapped_column(String(32), primary_key=True)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending | running | done
    position: Mapped[JsonDict] = mapped_column(JSON, default=dict)
    pages: Mapped[int] = mapped_column(Integer, default=0)
    items: Mapped[int] = mapped_column(Integer, default=0)
    skipped: Mapped[int] = mapped_column(Integer, default=0)  # rows a newer callback had already written
    updated_at: Mapped[datetime]
    note: Mapped[str] = mapped_column(String(512), default="")
