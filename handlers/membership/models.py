"""The membership ledger: ``membership_entry`` (append-only: what was earned or lapsed, once per
source), ``membership_account`` (each member's balances and level, kept in the same transaction
as the entries that move them) and ``membership_level_change`` (every move of a level, once per
cause)."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import CheckConstraint, Date, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from scrm.adapters.db.base import Base, BigId

POINTS, GROWTH = "points", "growth"
# Points held for a redemption the bank's fulfilment system has not answered yet: moved out of
# the spendable balance when reserved, out of the ledger for good when confirmed, back to the
# spendable balance when cancelled.
RESERVED = "reserved"
EARN, EXPIRE = "earn", "expire"
RESERVE, CONFIRM, CANCEL, RELEASE = "reserve", "confirm", "cancel", "release"


class MembershipEntry(Base):
    """One movement of one balance. Never updated or deleted: a lapse is a new negative entry.

    ``source`` names what caused it (``crm:<event id>``, ``radar.open:<material>``,
    ``expire:<when>`` …); one entry per (source, customer, kind), so a replay adds nothing."""

    __tablename__ = "membership_entry"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    external_userid: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(8))  # points | growth | reserved
    amount: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(String(8))  # earn | expire | reserve | confirm | cancel | release
    behaviour: Mapped[str] = mapped_column(String(32))  # the YAML's behaviour name ("" for a lapse)
    source: Mapped[str] = mapped_column(String(256))
    at: Mapped[datetime]
    day: Mapped[date] = mapped_column(Date)  # ``at``'s local day: what the caps count
    expires_at: Mapped[datetime | None] = mapped_column(default=None)  # earned points only

    __table_args__ = (UniqueConstraint("source", "external_userid", "kind", name="uq_membership_entry_source"),
                      Index("ix_membership_entry_caps", "external_userid", "behaviour", "day"),
                      # The nightly lapse reads the points falling due since its last run.
                      Index("ix_membership_entry_due", "expires_at"),
                      # A member's entries of one kind over a stretch of time: the growth an upgrade
                      # or a review weighs, read as a range, not as the member's whole history.
                      Index("ix_membership_entry_member_at", "external_userid", "kind", "at"))


class MembershipAccount(Base):
    """A member's balances (each the sum of their entries of that kind) and level: ``points`` is
    what the member may spend, ``reserved`` what pending redemptions hold."""

    __tablename__ = "membership_account"

    external_userid: Mapped[str] = mapped_column(String(128), primary_key=True)
    points: Mapped[int] = mapped_column(Integer, default=0)
    growth: Mapped[int] = mapped_column(Integer, default=0)
    reserved: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    level: Mapped[str] = mapped_column(String(32))
    level_since: Mapped[date] = mapped_column(Date)
    # The last review day this member went through (kept or moved down): a chunk run again
    # reviews nobody twice.
    reviewed_on: Mapped[date | None] = mapped_column(Date, default=None)
    # Every lapse due up to this moment is written: the nightly run reads only later due points.
    lapsed_until: Mapped[datetime | None] = mapped_column(default=None)
    updated_at: Mapped[datetime]

    __table_args__ = (CheckConstraint("points >= 0 AND growth >= 0", name="ck_membership_account_not_negative"),
                      CheckConstraint("reserved >= 0", name="ck_membership_account_reserved_not_negative"),
                      Index("ix_membership_account_level", "level"))


class MembershipLevelChange(Base):
    """A member's level moved (``up`` as soon as a threshold was crossed, ``down`` at a review)."""

    __tablename__ = "membership_level_change"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    external_userid: Mapped[str] = mapped_column(String(128))
    previous: Mapped[str] = mapped_column(String(32))
    level: Mapped[str] = mapped_column(String(32))
    direction: Mapped[str] = mapped_column(String(4))  # up | down
    cause: Mapped[str] = mapped_column(String(256))  # the crossing entry's source, or review:<day>
    at: Mapped[datetime]

    __table_args__ = (UniqueConstraint("external_userid", "cause", name="uq_membership_level_change_cause"),)


class MembershipRedemption(Base):
    """One redemption request: points reserved, then confirmed or cancelled once by the bank's
    fulfilment system's answer (or cancelled by the deadline when it never answered)."""

    __tablename__ = "membership_redemption"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # the request's idempotency id
    external_userid: Mapped[str] = mapped_column(String(128))
    crm_id: Mapped[str] = mapped_column(String(128))
    item: Mapped[str] = mapped_column(String(128))
    points: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(10))  # reserved | confirmed | cancelled
    reason: Mapped[str] = mapped_column(String(300), default="")  # why cancelled
    reserved_at: Mapped[datetime]
    deadline: Mapped[datetime]  # not answered by then: cancelled
    settled_at: Mapped[datetime | None] = mapped_column(default=None)

    __table_args__ = (CheckConstraint("points > 0", name="ck_membership_redemption_points"),
                      Index("ix_membership_redemption_member", "external_userid"))
