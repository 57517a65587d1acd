"""``feedback_answer``: one row per answered survey round.

A round is one send of a survey material: one radar token (material, manager, customer,
occurrence), so ``token_id`` is unique and a second submit of the same link is refused.
Where the customer and manager stood when answering (segments, tier, branch) is kept on the
row: a report of last quarter reads last quarter's branch, not today's.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from scrm.adapters.db.base import Base, BigId


class FeedbackAnswer(Base):
    __tablename__ = "feedback_answer"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    token_id: Mapped[str] = mapped_column(String(64), unique=True)
    survey: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(8))  # nps | csat
    external_userid: Mapped[str] = mapped_column(String(128))
    sender: Mapped[str] = mapped_column(String(64), default="")  # the manager who sent the link
    material_id: Mapped[str] = mapped_column(String(128))
    occurrence: Mapped[str | None] = mapped_column(String(512), default=None)
    score: Mapped[int] = mapped_column(Integer)
    category: Mapped[str] = mapped_column(String(16))  # promoter | passive | detractor
    comment: Mapped[str] = mapped_column(Text, default="")
    sent_at: Mapped[datetime]
    answered_at: Mapped[datetime]
    day: Mapped[date]  # the local day of the answer (periods group on it)
    branch: Mapped[str] = mapped_column(String(128), default="")  # the manager's 分行/支行 then
    tier: Mapped[str | None] = mapped_column(String(32), default=None)
    segments: Mapped[list[str]] = mapped_column(JSON, default=list)

    __table_args__ = (Index("ix_feedback_answer_survey_day", "survey", "day"),
                      Index("ix_feedback_answer_customer", "external_userid", "answered_at"))
