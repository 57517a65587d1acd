"""The internal events the feedback feature owns (its ``Feature.events``)."""

from __future__ import annotations

from typing import ClassVar

from scrm.kernel.events import Internal, Scheduled

SOURCE = "feedback"


class FeedbackAnswered(Internal):
    """A customer submitted a survey (``POST /f/{token}``): the answer row committed with it."""

    KIND: ClassVar[str] = "feedback.answered"
    SOURCE: ClassVar[str] = SOURCE

    answer_id: int
    # What the customer's timeline shows of it (the row has it all; these make the entry readable).
    survey: str = ""
    score: int | None = None
    category: str = ""
    subject: tuple[str, str] | None = None  # ("customer", id): the timeline recorder reads it


class FeedbackAlertDue(Scheduled):
    """A low score answered inside quiet hours: the manager's card, at their end."""

    KIND: ClassVar[str] = "feedback.alert_due"

    answer_id: int


EVENTS: tuple[type[Internal], ...] = (FeedbackAnswered, FeedbackAlertDue)
