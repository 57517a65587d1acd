"""The 客群与会员 page's nightly snapshot (:mod:`handlers.console.segstore`): one run per local
day, and what it counted per manager (``owner``: the manager of the customer's earliest active
relation; ``""`` for customers nobody follows; ``*`` for the whole bank's totals, so the whole
bank reads a few hundred rows rather than summing every manager's). The primary keys lead with
(run, owner): a scope's view is an index range per manager."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Date, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from scrm.adapters.db.base import Base, BigId


class ConsoleSegRun(Base):
    """One snapshot: taken for the local ``day`` at ``computed_at``, level flows from ``since``
    (the first day of the oldest month shown). One per day: rebuilding a day replaces it."""

    __tablename__ = "console_seg_run"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    day: Mapped[date] = mapped_column(Date)
    since: Mapped[date] = mapped_column(Date)
    computed_at: Mapped[datetime]

    __table_args__ = (UniqueConstraint("day", name="uq_console_seg_run_day"),)


class ConsoleSegCell(Base):
    """Customers of one manager in one cell of the behaviour matrix (``segment`` "" = in no
    segment; a customer in two segments counts in both rows, as ``scrm segments matrix``)."""

    __tablename__ = "console_seg_cell"

    run_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    owner: Mapped[str] = mapped_column(String(64), primary_key=True)
    segment: Mapped[str] = mapped_column(String(64), primary_key=True)
    stage: Mapped[str] = mapped_column(String(32), primary_key=True)
    count: Mapped[int] = mapped_column(Integer)


class ConsoleSegLevel(Base):
    """One manager's members at one level, and their points: spendable (the liability) and
    held by redemptions not answered yet."""

    __tablename__ = "console_seg_level"

    run_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    owner: Mapped[str] = mapped_column(String(64), primary_key=True)
    level: Mapped[str] = mapped_column(String(32), primary_key=True)
    members: Mapped[int] = mapped_column(Integer)
    points: Mapped[int] = mapped_column(BigInteger)  # a million members' points pass 2**31
    reserved: Mapped[int] = mapped_column(BigInteger)


class ConsoleSegFlow(Base):
    """One manager's members' level moves in one local month (``YYYY-MM``), per direction and
    (previous, new) level."""

    __tablename__ = "console_seg_flow"

    run_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    owner: Mapped[str] = mapped_column(String(64), primary_key=True)
    month: Mapped[str] = mapped_column(String(7), primary_key=True)
    direction: Mapped[str] = mapped_column(String(4), primary_key=True)
    previous: Mapped[str] = mapped_column(String(32), primary_key=True)
    level: Mapped[str] = mapped_column(String(32), primary_key=True)
    count: Mapped[int] = mapped_column(Integer)


class ConsoleSegTop(Base):
    """One of a manager's 10 members with the most growth (ties by id): a scope's top 10 is the
    top 10 of its managers' top 10s."""

    __tablename__ = "console_seg_top"

    run_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    owner: Mapped[str] = mapped_column(String(64), primary_key=True)
    external_userid: Mapped[str] = mapped_column(String(128), primary_key=True)
    growth: Mapped[int] = mapped_column(Integer)
    points: Mapped[int] = mapped_column(Integer)
    level: Mapped[str] = mapped_column(String(32))
