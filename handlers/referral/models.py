"""Referral tables: ``referral_code`` (each referrer's code and its 「联系我」 QR code),
``referral`` (a friend attributed to one referrer, ever, and what became of it) and
``referral_flag`` (what ops should look at: self-referrals, loops, a second code, bursts …)."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Boolean, Date, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from scrm.adapters.db.base import Base, BigId

# A referral's status: waiting for the qualifying event; rewarded (both sides); converted with
# the referrer over the monthly cap (the friend rewarded only); converted after the window (no
# reward); refused as fraud once the friend's CRM identity was known (no reward).
PENDING, REWARDED, CAPPED, LATE, REJECTED = "pending", "rewarded", "capped", "late", "rejected"
CONVERTED = (REWARDED, CAPPED)


class ReferralCode(Base):
    """A customer's personal code; ``state`` (``mgm-<code>``, ≤30 characters) is the contact
    way's, which WeCom hands back with every friend who adds a manager through it."""

    __tablename__ = "referral_code"

    external_userid: Mapped[str] = mapped_column(String(128), primary_key=True)
    code: Mapped[str] = mapped_column(String(16), unique=True)
    state: Mapped[str] = mapped_column(String(30), unique=True)
    config_id: Mapped[str | None] = mapped_column(String(128), default=None)
    qr_code: Mapped[str] = mapped_column(String(512), default="")
    managers: Mapped[str] = mapped_column(String(512), default="")  # the way's userids, comma-separated
    created_at: Mapped[datetime]


class Referral(Base):
    """One friend, attributed to the first referrer whose code brought them (never another)."""

    __tablename__ = "referral"

    friend: Mapped[str] = mapped_column(String(128), primary_key=True)
    referrer: Mapped[str] = mapped_column(String(128))
    code: Mapped[str] = mapped_column(String(16))
    userid: Mapped[str] = mapped_column(String(64))  # the manager the friend added through the code
    arrived_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(16), default=PENDING)
    status_at: Mapped[datetime]
    conversion: Mapped[str] = mapped_column(String(128), default="")  # the CRM event id that converted
    converted_at: Mapped[datetime | None] = mapped_column(default=None)  # the CRM's own time of it
    reward_month: Mapped[date | None] = mapped_column(Date, default=None)  # local month the cap counts in
    referrer_rewarded: Mapped[bool] = mapped_column(Boolean, default=False)

    __table_args__ = (Index("ix_referral_referrer", "referrer", "status"),)


class ReferralFlag(Base):
    """Something ops should look at, once per (friend, code, reason)."""

    __tablename__ = "referral_flag"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    friend: Mapped[str] = mapped_column(String(128))
    referrer: Mapped[str] = mapped_column(String(128), default="")
    code: Mapped[str] = mapped_column(String(16), default="")
    reason: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str] = mapped_column(String(256), default="")
    at: Mapped[datetime]

    __table_args__ = (UniqueConstraint("friend", "code", "reason", name="uq_referral_flag"),)
