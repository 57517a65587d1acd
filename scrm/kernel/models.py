"""The pipeline's tables: inbox, outbox, scheduler jobs and occurrences.

Each feature declares its own tables in ``handlers/<name>/models.py`` on the same ``Base``
(``scrm.adapters.db.base``).

A leaf apart from :mod:`scrm.adapters.db.types`. Every datetime is UTC (``UTCDateTime``). JSON columns use
the generic ``JSON`` type (TEXT on SQLite, json on PostgreSQL).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from scrm.adapters.db.base import Base, BigId, JsonDict

# --------------------------------------------------------------------------------------------
# Pipeline: inbox, outbox, scheduler
# --------------------------------------------------------------------------------------------


INBOX_URGENT = 0
INBOX_NORMAL = 100
INBOX_PENDING_SQL = "status = 'pending'"


class InboxEvent(Base):
    """One inbound event (WeCom callback, scheduler tick, CRM change), durable before ack."""

    __tablename__ = "inbox_event"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    dedup_key: Mapped[str] = mapped_column(String(512), unique=True)
    source: Mapped[str] = mapped_column(String(16), default="wecom")  # wecom | scheduler | crm
    received_at: Mapped[datetime]
    raw: Mapped[str] = mapped_column(Text)
    msg_type: Mapped[str] = mapped_column(String(64), default="")
    event: Mapped[str] = mapped_column(String(64), default="")
    change_type: Mapped[str] = mapped_column(String(64), default="")
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending | done | dead
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    locked_until: Mapped[datetime | None] = mapped_column(default=None)
    lease_owner: Mapped[str | None] = mapped_column(String(64), default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    done_at: Mapped[datetime | None] = mapped_column(default=None)
    # Claimed lowest first: an event carrying a welcome code (valid 20 s) is INBOX_URGENT and
    # overtakes a backlog (a nightly CRM import), never an earlier event of its own order_key.
    priority: Mapped[int] = mapped_column(Integer, default=100, server_default=text("100"))
    # One customer relation or group chat: its events are handled in arrival order; "" = none.
    order_key: Mapped[str] = mapped_column(String(160), default="", server_default=text("''"))

    __table_args__ = (
        Index("ix_inbox_due", "status", "next_attempt_at"),
        # The claim's order over pending rows: the claim walks it instead of sorting the backlog.
        Index("ix_inbox_claim", "priority", "id", sqlite_where=text(INBOX_PENDING_SQL),
              postgresql_where=text(INBOX_PENDING_SQL)),
        # "Is an earlier event of this relation still pending?" for urgent rows.
        Index("ix_inbox_order", "order_key", "id", sqlite_where=text(INBOX_PENDING_SQL),
              postgresql_where=text(INBOX_PENDING_SQL)),
    )


# Statuses an outbox action can still be claimed in; the claim index covers exactly these rows.
OUTBOX_UNFINISHED = ("pending", "sending", "unknown")
OUTBOX_UNFINISHED_SQL = "status IN ('pending', 'sending', 'unknown')"


class OutboxAction(Base):
    """One side effect on WeCom (or the CRM webhook), sent at most once per idempotency key."""

    __tablename__ = "outbox_action"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    idempotency_key: Mapped[str] = mapped_column(String(512), unique=True)
    kind: Mapped[str] = mapped_column(String(64))
    payload: Mapped[JsonDict]
    priority: Mapped[int] = mapped_column(Integer, default=100)  # lower first; welcome = 0
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    locked_until: Mapped[datetime | None] = mapped_column(default=None)
    lease_owner: Mapped[str | None] = mapped_column(String(64), default=None)
    result: Mapped[JsonDict | None] = mapped_column(default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    wecom_msgid: Mapped[str | None] = mapped_column(String(128), default=None)
    # Ordering lane: actions with the same lane are sent strictly in id order (e.g. per customer).
    lane: Mapped[str | None] = mapped_column(String(256), default=None)
    not_after: Mapped[datetime | None] = mapped_column(default=None)  # e.g. welcome code expiry
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None] = mapped_column(default=None)

    __table_args__ = (
        Index("ix_outbox_due", "status", "priority", "next_attempt_at"),
        Index("ix_outbox_lane", "lane", "id"),
        # The claim's order over unfinished actions only: the claim walks it and stops after a
        # batch, instead of sorting every due row (150 ms per claim with 100,000 queued on
        # SQLite, 4 ms with this), and sent history never enters it.
        Index("ix_outbox_claim", "priority", "next_attempt_at", "id",
              sqlite_where=text(OUTBOX_UNFINISHED_SQL), postgresql_where=text(OUTBOX_UNFINISHED_SQL)),
    )


class DueJob(Base):
    """A scheduled job; claimed with a lease so several instances may tick safely."""

    __tablename__ = "due_job"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    job_key: Mapped[str] = mapped_column(String(256), unique=True)
    kind: Mapped[str] = mapped_column(String(64))
    trigger: Mapped[JsonDict]
    payload: Mapped[JsonDict] = mapped_column(default=dict)
    next_run_at: Mapped[datetime | None]
    locked_until: Mapped[datetime | None] = mapped_column(default=None)
    lease_owner: Mapped[str | None] = mapped_column(String(64), default=None)
    last_run_at: Mapped[datetime | None] = mapped_column(default=None)
    misfire_grace_s: Mapped[int] = mapped_column(Integer, default=3600)
    enabled: Mapped[bool] = mapped_column(default=True)

    __table_args__ = (Index("ix_due_job_next", "enabled", "next_run_at"),)


class Occurrence(Base):
    """Idempotency record for one occurrence of a job or SOP step for one target."""

    __tablename__ = "occurrence"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    job_key: Mapped[str] = mapped_column(String(256))
    occurrence_key: Mapped[str] = mapped_column(String(512))
    outcome: Mapped[str] = mapped_column(String(32))  # done | skipped | failed
    reason: Mapped[str | None] = mapped_column(Text, default=None)
    at: Mapped[datetime]

    # ``at``: the console reads a period of SOP outcomes (the cockpit's roll-up, the effect page).
    __table_args__ = (UniqueConstraint("job_key", "occurrence_key", name="uq_occurrence"),
                      Index("ix_occurrence_at", "at"))




class ServiceInstance(Base):
    """One running service process, beating while alive (``scrm.kernel.liveness``).

    Its ``id`` is the lease owner of every row it claims, so a peer that finds it silent (or a
    restart on the same machine that finds its process gone) releases exactly its claims.
    """

    __tablename__ = "service_instance"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    host: Mapped[str] = mapped_column(String(64))  # for people: which machine
    pid: Mapped[int] = mapped_column(Integer)
    # Identifies the process table this pid belongs to (boot id + pid namespace) and the
    # process's start tick: a restart on the same machine can tell its dead predecessor at once.
    pid_space: Mapped[str] = mapped_column(String(96), default="")
    process_start: Mapped[str] = mapped_column(String(32), default="")
    started_at: Mapped[datetime]
    heartbeat_at: Mapped[datetime]
