"""The internal events the compliance feature owns (its ``Feature.events``)."""

from __future__ import annotations

from typing import ClassVar

from scrm.kernel.events import Internal, Scheduled


class TrailPurge(Scheduled):
    """Purge the trail's expired records (fired by the ``compliance.purge`` job)."""

    KIND: ClassVar[str] = "compliance.purge"
    SOURCE: ClassVar[str] = "compliance"


EVENTS: tuple[type[Internal], ...] = (TrailPurge,)
