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

from sqlalchemy import JSON, Boolean, Date, Index, Integer, String, Text
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


# --- conversation review (会话存档) ------------------------------------------------------------
# ``archive_message``: every archived chat message, decrypted, numbered by the archive's own
# ``seq``; stored in the same transaction as its review and the cursor's move, so a crash
# stores and reviews a batch wholly or not at all. ``archive_cursor``: the last ``seq`` taken
# (one row). ``review_case``: one per message a review rule hit.


class ArchiveMessage(Base):
    __tablename__ = "archive_message"
    __table_args__ = (Index("ix_archive_message_conversation_seq", "conversation", "seq"),)

    seq: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=False)
    msgid: Mapped[str] = mapped_column(String(128), unique=True)
    # roomid for a group chat, else the two parties sorted ("a|b"): what "in context" means.
    conversation: Mapped[str] = mapped_column(String(160))
    action: Mapped[str] = mapped_column(String(16))  # send | recall | switch
    sender: Mapped[str] = mapped_column(String(64))
    tolist: Mapped[list[str]] = mapped_column(JSON, default=list)
    roomid: Mapped[str] = mapped_column(String(64), default="")
    msgtime: Mapped[datetime]
    msgtype: Mapped[str] = mapped_column(String(32))
    text: Mapped[str] = mapped_column(Text, default="")  # what the review rules read
    content: Mapped[dict[str, object]] = mapped_column(JSON)  # the message as decrypted
    key_version: Mapped[int] = mapped_column(Integer)
    stored_at: Mapped[datetime]


class ArchiveCursor(Base):
    __tablename__ = "archive_cursor"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)  # always 1
    seq: Mapped[int] = mapped_column(BigId)  # the last archive seq stored (0: none yet)
    updated_at: Mapped[datetime]


class ReviewCase(Base):
    __tablename__ = "review_case"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    message_seq: Mapped[int] = mapped_column(BigId, unique=True)  # one case per message
    rule: Mapped[str] = mapped_column(String(64), index=True)  # the first rule hit
    hits: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)  # every rule hit: id, title, matched
    urgent: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16), index=True, default="open")  # open | dismissed | escalated
    assignee: Mapped[str] = mapped_column(String(64), default="")
    note: Mapped[str] = mapped_column(Text, default="")
    opened_at: Mapped[datetime]
    updated_at: Mapped[datetime]


# --- marketing consent ---------------------------------------------------------------------------
# ``customer_consent``: what a customer said about one marketing category (wealth, loans …), from
# the sidebar (they told their manager) or the preference page; appended, never updated, so the
# history shows who changed what when. The latest row per (customer, category) wins, weighed
# against the CRM's own map by time (``handlers.compliance.consent``).


class CustomerConsent(Base):
    __tablename__ = "customer_consent"
    __table_args__ = (Index("ix_customer_consent_customer", "external_userid", "category", "at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    external_userid: Mapped[str] = mapped_column(String(64))
    category: Mapped[str] = mapped_column(String(64))
    granted: Mapped[bool] = mapped_column(Boolean)
    source: Mapped[str] = mapped_column(String(16))  # crm | sidebar | preference
    by: Mapped[str] = mapped_column(String(64), default="")  # the manager who recorded it ('' for the customer)
    at: Mapped[datetime]
