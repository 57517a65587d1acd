"""CRM integration tables (the core CRM tables live in :mod:`scrm.db.models`).

``crm_sync_state`` remembers, per follow relation, which CRM-owned tags the last sync planned,
so a resumed or repeated run skips relations that are already done. ``crm_writeback_state`` is
the last set of manager-owned tags reported to the CRM, so a manager's edit is reported once.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, String
from sqlalchemy.orm import Mapped, mapped_column

from scrm.db.models import Base


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
