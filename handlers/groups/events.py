"""The internal events the groups feature owns (its ``Feature.events``)."""

from __future__ import annotations

from typing import ClassVar

from scrm.kernel.events import Internal, Scheduled


class GroupLifetimeDue(Scheduled):
    """An event group (活动快闪群) reached its lifetime (a one-off job armed when it got its type)."""

    KIND: ClassVar[str] = "group.lifetime_due"

    chat_id: str
    subject: tuple[str, str]  # ("group", chat_id): the timeline recorder reads it


EVENTS: tuple[type[Internal], ...] = (GroupLifetimeDue,)
