"""Extra timeline entries from the lifecycle handlers.

The timeline handler already records every event; :func:`note` adds what only the lifecycle
knows (a welcome that could not be built, tags that were queued), under the same
one-entry-per-(event, subject, kind) rule, so replays write nothing twice.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.timeline.record import add_entries


async def note(session: AsyncSession, inbox_id: int | None, subject_type: str, subject_id: str, at: datetime,
               kind: str, detail: dict[str, Any]) -> None:
    """One extra timeline entry for a customer, group or member."""
    await add_entries(session, [{"subject_type": subject_type, "subject_id": subject_id, "at": at, "kind": kind,
                                 "detail": detail, "inbox_event_id": inbox_id}])
