"""The internal events the membership feature owns (its ``Feature.events``)."""

from __future__ import annotations

from typing import ClassVar

from scrm.kernel.events import Internal, Scheduled

SOURCE = "membership"


class MembershipNightly(Scheduled):
    """Lapse due points and, on a review day, review levels for one chunk of members (those
    after ``cursor``), then queue the next chunk. ``day`` is the run's local date (ISO)."""

    KIND: ClassVar[str] = "membership.nightly"
    SOURCE: ClassVar[str] = SOURCE

    cursor: str = ""
    day: str = ""


class LevelChanged(Internal):
    """A member's level moved: ``up`` as soon as a threshold was crossed (``cause`` the entry
    that crossed it), ``down`` at the review of ``day``."""

    KIND: ClassVar[str] = "membership.level_changed"
    SOURCE: ClassVar[str] = SOURCE

    external_userid: str
    previous: str
    level: str
    direction: str  # up | down
    cause: str
    day: str


EVENTS: tuple[type[Internal], ...] = (MembershipNightly, LevelChanged)
