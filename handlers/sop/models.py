"""State of the SOP engine: what was sent to whom (caps, idempotency), task cards, mass-send follow-up.

Declared as the sop feature's ``models`` (``handlers/sop/feature.py``); migration ``sop_0001``.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, Date, Index, Integer, String, Text
from sqlalchemy import text as sql_text  # the class has a column named text
from sqlalchemy.orm import Mapped, mapped_column

from scrm.adapters.db.base import Base, BigId, JsonDict


class SopSend(Base):
    """One planned 1:1 or group push (one row per idempotency key).

    The contact caps count these rows, so a send counts from the moment it is queued: a
    customer never gets a second message because the first one still waits in the outbox.
    """

    __tablename__ = "sop_send"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(512), unique=True)
    target: Mapped[str] = mapped_column(String(128))  # external_userid or chat_id
    target_type: Mapped[str] = mapped_column(String(16))  # customer | group
    source: Mapped[str] = mapped_column(String(128))  # calendar:x | path:y
    step: Mapped[str] = mapped_column(String(256))
    sender: Mapped[str] = mapped_column(String(64), default="")
    material: Mapped[str] = mapped_column(String(128), default="")
    day: Mapped[date] = mapped_column(Date)
    created_at: Mapped[datetime]

    __table_args__ = (Index("ix_sop_send_target_day", "target", "day"),)


#: The cards still waiting on their manager (open or snoozed): the partial index's condition.
OPEN_SQL = "status IN ('open', 'snoozed')"


class SopTask(Base):
    """A task card to a manager (SOP task or key-event reminder) and what became of it."""

    __tablename__ = "sop_task"

    task_id: Mapped[str] = mapped_column(String(128), primary_key=True)  # WeCom card task_id
    key: Mapped[str] = mapped_column(String(512), unique=True)  # the occurrence it stands for
    userid: Mapped[str] = mapped_column(String(64), index=True)
    target: Mapped[str] = mapped_column(String(128), default="")  # external_userid or chat_id
    source: Mapped[str] = mapped_column(String(128))  # reminder:x | calendar:y | path:z
    title: Mapped[str] = mapped_column(String(256), default="")
    text: Mapped[str] = mapped_column(Text, default="")
    day: Mapped[date] = mapped_column(Date)
    # open | done | snoozed | not_relevant | escalated
    status: Mapped[str] = mapped_column(String(16), default="open")
    snoozes: Mapped[int] = mapped_column(Integer, default=0)
    escalated_to: Mapped[str | None] = mapped_column(String(64), default=None)
    created_at: Mapped[datetime]
    handled_at: Mapped[datetime | None] = mapped_column(default=None)
    detail: Mapped[JsonDict] = mapped_column(JSON, default=dict)

    # A customer's cards on the console's customer page (migration console_0004); the console's
    # tasks page (a period's cards by manager and status) and home page (the open cards, and
    # which are overdue) read theirs from an index alone (console_0009).
    __table_args__ = (Index("ix_sop_task_user_day", "userid", "day"), Index("ix_sop_task_target_day", "target", "day"),
                      Index("ix_sop_task_day_user_status", "day", "userid", "status"),
                      Index("ix_sop_task_open_user_day", "userid", "day", sqlite_where=sql_text(OPEN_SQL),
                            postgresql_where=sql_text(OPEN_SQL)))


class SopMassSend(Base):
    """A mass-send task (add_msg_template msgid) followed until its sender confirms it."""

    __tablename__ = "sop_mass_send"

    msgid: Mapped[str] = mapped_column(String(128), primary_key=True)
    outbox_key: Mapped[str] = mapped_column(String(512))
    created_at: Mapped[datetime]
    confirmed: Mapped[bool] = mapped_column(default=False)
    # Times of remind_groupmsg_send calls (WeCom allows 3 per 24 h per msgid).
    reminds: Mapped[list[str]] = mapped_column(JSON, default=list)
    checked_at: Mapped[datetime | None] = mapped_column(default=None)
