"""The internal events the lifecycle feature owns (its ``Feature.events``)."""

from __future__ import annotations

from typing import ClassVar

from scrm.kernel.events import Internal, Scheduled

SOURCE = "lifecycle"


class LifecycleNightly(Scheduled):
    """Score one chunk of customers (external_userid after ``cursor``), then queue the next
    chunk: fired by the ``lifecycle.nightly`` job (cursor ""), and by each chunk for the next.
    ``day`` is the run's local date (ISO), the same for every chunk of one run."""

    KIND: ClassVar[str] = "lifecycle.nightly"
    SOURCE: ClassVar[str] = SOURCE

    cursor: str = ""
    day: str = ""


class StageEntered(Internal):
    """A customer moved into ``stage`` (from ``previous``, "" the first time) on ``day``."""

    KIND: ClassVar[str] = "lifecycle.stage_entered"
    SOURCE: ClassVar[str] = SOURCE

    external_userid: str
    stage: str
    previous: str = ""
    day: str
    churn_risk: bool = False


EVENTS: tuple[type[Internal], ...] = (LifecycleNightly, StageEntered)
