"""Small helpers the lifecycle handlers share: extra timeline entries and an outbox wake-up.

The timeline handler already records every event; :func:`note` adds what only the lifecycle
knows (a welcome that could not be built, tags that were queued), under the same
one-entry-per-(event, subject, kind) rule, so replays write nothing twice.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import event as sa_event
from sqlalchemy.ext.asyncio import AsyncSession

from scrm.db.engine import dialect_of, insert_ignore, table_of
from scrm.db.models import Timeline
from scrm.outbox import Outbox


async def note(session: AsyncSession, inbox_id: int | None, subject_type: str, subject_id: str, at: datetime,
               kind: str, detail: dict[str, Any]) -> None:
    """One extra timeline entry for a customer, group or member."""
    row = {"subject_type": subject_type, "subject_id": subject_id, "at": at, "kind": kind, "detail": detail,
           "inbox_event_id": inbox_id}
    await session.execute(insert_ignore(dialect_of(session), table_of(Timeline), row,
                                        ["inbox_event_id", "subject_type", "subject_id", "kind"]))


def wake_after_commit(session: AsyncSession, outbox: Outbox) -> None:
    """Wake the outbox senders as soon as this transaction commits.

    The inbox wakes them after a whole batch of events; a welcome code lives 20 seconds, so a
    welcome must not wait for the rest of its batch. (SQLAlchemy runs session events on the
    event loop's thread for async sessions, so setting the asyncio.Event here is safe.)
    """
    sa_event.listen(session.sync_session, "after_commit", lambda _s: outbox.wake(), once=True)
