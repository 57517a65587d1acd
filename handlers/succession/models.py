"""Succession tables: handover batches and one row per customer or group handed over.

A **batch** is one handover decision: a resigned member's customers and groups found by one
sweep (``r:{userid}:{inbox id}``), or one in-office move request (``m:{request id}``). An
**item** is one customer (or group) in it, with whom it goes to and what WeCom made of it::

    planned ─(call answered)─▶ waiting ─(transfer_result)─▶ done | refused | limit | failed
       └──────(call refused per customer: 40128, 84061 …)──▶ limit | failed

Groups go ``planned → done | failed`` (``groupchat/transfer`` acts at once).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from scrm.adapters.db.base import Base, BigId

OPEN_STATUSES = ("planned", "waiting")
FINAL_STATUSES = ("done", "refused", "limit", "failed")


class SuccessionBatch(Base):
    """One handover decision and whom it has told (``notified``: takeover userids)."""

    __tablename__ = "succession_batch"

    id: Mapped[str] = mapped_column(String(160), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # resigned | move
    handover_userid: Mapped[str] = mapped_column(String(64), index=True)
    source: Mapped[str] = mapped_column(String(32))  # sweep | cli | crm | file
    message: Mapped[str] = mapped_column(String(256), default="")  # transfer_success_msg (in office)
    created_at: Mapped[datetime]
    notified: Mapped[list[str]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(16), default="open")  # open | finished


class SuccessionItem(Base):
    """One customer or group of a batch and its transfer's state."""

    __tablename__ = "succession_item"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    batch_id: Mapped[str] = mapped_column(String(160))
    target_type: Mapped[str] = mapped_column(String(16))  # customer | group
    target: Mapped[str] = mapped_column(String(128))  # external_userid or chat_id
    handover_userid: Mapped[str] = mapped_column(String(64))
    takeover_userid: Mapped[str] = mapped_column(String(64))
    rule: Mapped[str] = mapped_column(String(128), default="")  # which rule chose the takeover
    call_key: Mapped[str] = mapped_column(String(256), default="")  # the outbox action carrying it
    status: Mapped[str] = mapped_column(String(16), default="planned")
    errcode: Mapped[int | None] = mapped_column(default=None)
    reason: Mapped[str] = mapped_column(String(256), default="")
    created_at: Mapped[datetime]
    started_at: Mapped[datetime | None] = mapped_column(default=None)  # WeCom accepted the request
    finished_at: Mapped[datetime | None] = mapped_column(default=None)

    __table_args__ = (
        UniqueConstraint("batch_id", "target_type", "target", name="uq_succession_item"),
        Index("ix_succession_item_target", "target", "status"),
        Index("ix_succession_item_status", "status", "batch_id"),
    )
