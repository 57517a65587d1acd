"""The internal events the staff feature owns (its ``Feature.events``)."""

from __future__ import annotations

from typing import ClassVar

from scrm.kernel.events import Internal, Scheduled


class StaffSync(Scheduled):
    """A full sync of the directory from WeCom's address book: fired nightly by the scheduler
    (``staff.nightly`` job)."""

    KIND: ClassVar[str] = "staff.sync"
    SOURCE: ClassVar[str] = "staff"


EVENTS: tuple[type[Internal], ...] = (StaffSync,)
