"""CRM integration tables (the core CRM tables live in :mod:`scrm.kernel.models`).

``crm_sync_state`` remembers, per follow relation, which CRM-owned tags the last sync planned,
so a resumed or repeated run skips relations that are already done. ``crm_writeback_state`` is
the last set of manager-owned tags reported to the CRM, so a manager's edit is reported once.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from scrm.adapters.db.base import Base, BigId, JsonDict


class CrmSyncState(Base):
    """What the tag sync last planned for one (manager, customer) relation."""

    __tablename__ = "crm_sync_state"

    userid: Mapped[str] = mapped_column(String(64), primary_key=True)
    external_userid: Mapped[str] = mapped_column(String(128), primary_key=True)
    desired_hash: Mapped[str] = mapped_column(String(64))
    generation: Mapped[str] = mapped_column(String(64))
    synced_at: Mapped[datetime]


class CrmWritebackState(Base):
    """Manager-owned tag ids of one relation as last reported to the CRM webhook."""

    __tablename__ = "crm_writeback_state"

    userid: Mapped[str] = mapped_column(String(64), primary_key=True)
    external_userid: Mapped[str] = mapped_column(String(128), primary_key=True)
    tag_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    reported_at: Mapped[datetime]


class CrmCustomer(Base):
    __tablename__ = "crm_customer"

    crm_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    attributes: Mapped[JsonDict] = mapped_column(default=dict)
    unionid: Mapped[str | None] = mapped_column(String(128), default=None, index=True)
    updated_at: Mapped[datetime]


class CrmEvent(Base):
    __tablename__ = "crm_event"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(256), unique=True)
    crm_id: Mapped[str] = mapped_column(String(128), index=True)
    kind: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime]
    payload: Mapped[JsonDict] = mapped_column(default=dict)


class Binding(Base):
    """CRM customer ↔ WeCom external contact."""

    __tablename__ = "binding"

    crm_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    external_userid: Mapped[str] = mapped_column(String(128), index=True)
    source: Mapped[str] = mapped_column(String(32))  # unionid | explicit | direct
    bound_at: Mapped[datetime]

    # ix_binding_bound_at: the SOP effect page reads the bindings made since its stored days were
    # built (a customer bound later makes their earlier goal events count).
    __table_args__ = (Index("ix_binding_bound_at", "bound_at"),)


class CrmGroup(Base):
    """A customer group as the CRM describes it: the employer of a payroll group and its payday."""

    __tablename__ = "crm_group"

    chat_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    employer: Mapped[str] = mapped_column(String(128), default="")
    payday: Mapped[int | None] = mapped_column(Integer, default=None)
    updated_at: Mapped[datetime]
