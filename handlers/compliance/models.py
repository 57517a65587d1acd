"""The message trail's tables.

``trail_record``: one row per customer-facing message known to have gone out, numbered by
``seq`` without gaps, each carrying the hash of the one before (``prev_hash``) and its own
(``hash`` over its fields and ``prev_hash``). Changing a row breaks its hash, deleting one breaks
the next row's link, inserting one breaks both. ``trail_head`` is the chain's end (one row): the
recorder locks it to append, so two instances append one after the other, never side by side;
after a retention purge it also says where the kept chain starts (``base_seq``/``base_hash``).
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, Date, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from scrm.adapters.db.base import Base, BigId

GENESIS = "0" * 64


class TrailRecord(Base):
    __tablename__ = "trail_record"

    seq: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=False)
    at: Mapped[datetime]  # when it was known to have gone out (WeCom's answer, or an operator's check)
    kind: Mapped[str] = mapped_column(String(32))  # welcome | sop | handover …
    api: Mapped[str] = mapped_column(String(96))
    outbox_key: Mapped[str] = mapped_column(String(512), index=True)
    msgid: Mapped[str] = mapped_column(String(128), default="")
    sender: Mapped[str] = mapped_column(String(64), default="")
    audience: Mapped[list[str]] = mapped_column(JSON, default=list)  # external_userids or chat ids
    audience_type: Mapped[str] = mapped_column(String(16), default="customer")  # customer | group
    material: Mapped[str] = mapped_column(String(128), default="")
    material_hash: Mapped[str] = mapped_column(String(64), default="")
    text_hash: Mapped[str] = mapped_column(String(64))  # of the content as queued (text and attachments)
    decisions: Mapped[list[str]] = mapped_column(JSON, default=list)  # the policy checks that let it through
    retain_until: Mapped[date] = mapped_column(Date, index=True)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class TrailHead(Base):
    __tablename__ = "trail_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)  # always 1
    seq: Mapped[int] = mapped_column(BigId)  # the last appended record's (0: none yet)
    hash: Mapped[str] = mapped_column(String(64))
    base_seq: Mapped[int] = mapped_column(BigId, default=0)  # records up to here were purged
    base_hash: Mapped[str] = mapped_column(String(64), default=GENESIS)  # the hash of record base_seq
