"""Radar tables: link sends (the denominator of open rates) and the alert aggregation state.

Clicks themselves live in ``radar_click`` (scrm.kernel.models); they are written by the
``radar.click`` handler inside the event's transaction, so a replayed event counts once.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from scrm.adapters.db.base import Base, BigId


class RadarSend(Base):
    """One tracked link minted for a send; the token id is unique, so re-minting counts once."""

    __tablename__ = "radar_send"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    token_id: Mapped[str] = mapped_column(String(64), unique=True)
    material_id: Mapped[str] = mapped_column(String(128), index=True)
    sender: Mapped[str] = mapped_column(String(64), default="")
    external_userid: Mapped[str | None] = mapped_column(String(128), default=None)
    occurrence: Mapped[str | None] = mapped_column(String(512), default=None)
    at: Mapped[datetime]


class RadarAlert(Base):
    """Alert aggregation per (manager, customer, material): durable, so restarts keep the hour.

    ``suppressed`` counts clicks that got no alert of their own since the last digest.
    """

    __tablename__ = "radar_alert"

    sender: Mapped[str] = mapped_column(String(64), primary_key=True)
    external_userid: Mapped[str] = mapped_column(String(128), primary_key=True)
    material_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    last_alert_at: Mapped[datetime | None] = mapped_column(default=None)
    suppressed: Mapped[int] = mapped_column(Integer, default=0)


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

    # The SOP effect page finds the opens of a step's sends by their occurrence; the console's
    # customer page, the links a customer opened, newest first (migration console_0004).
    __table_args__ = (Index("ix_radar_click_occurrence", "occurrence"),
                      Index("ix_radar_click_customer_at", "external_userid", "at"))
