"""Writing timeline entries: what happened to a customer, group or member, for people."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.timeline.models import Timeline
from scrm.adapters.db.engine import dialect_of, insert_ignore, table_of

# One entry per (inbox event, subject, kind): retries and replays write nothing twice.
UNIQUE = ("inbox_event_id", "subject_type", "subject_id", "kind")


async def add_entries(session: AsyncSession, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert timeline rows in the caller's transaction, ignoring ones already recorded."""
    if rows:
        await session.execute(insert_ignore(dialect_of(session), table_of(Timeline), UNIQUE), rows)
