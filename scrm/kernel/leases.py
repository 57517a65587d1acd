"""Claiming due rows with a lease, the same way for the inbox, the outbox and the scheduler.

PostgreSQL: ``UPDATE ... WHERE id IN (SELECT id ... FOR UPDATE SKIP LOCKED) RETURNING`` so that
several instances never claim the same row. SQLite has one writer at a time, so the same UPDATE
is atomic there without row locks (``with_for_update`` is ignored by its dialect).
Completion is fenced: it only applies while the row is still leased by the same owner.
"""

from __future__ import annotations

import os
import socket
import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import InstrumentedAttribute


def new_owner_id(prefix: str) -> str:
    """A lease owner id unique to this worker in this process (host, pid, random)."""
    return f"{prefix}:{socket.gethostname()[:20]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def claimable(locked_until: InstrumentedAttribute[datetime | None], now: datetime) -> ColumnElement[bool]:
    return or_(locked_until.is_(None), locked_until < now)


async def claim(
    conn: AsyncConnection | AsyncSession,
    model: type[Any],
    due: ColumnElement[bool],
    order_by: list[str],
    *,
    now: datetime,
    lease_s: float,
    owner: str,
    limit: int,
    extra_values: dict[str, Any] | None = None,
) -> list[Any]:
    """Lease up to ``limit`` due rows of ``model`` to ``owner``; returns their full rows."""
    table = model.__table__
    candidates: Select[Any] = (
        select(table.c.id)
        .where(and_(due, claimable(model.locked_until, now)))
        .order_by(*(table.c[name] for name in order_by))
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    stmt = (
        update(table)
        .where(table.c.id.in_(candidates.scalar_subquery()))
        .values(locked_until=now + timedelta(seconds=lease_s), lease_owner=owner, **(extra_values or {}))
        .returning(*table.c)
    )
    result = await conn.execute(stmt)
    # RETURNING gives no order guarantee; callers rely on the claim order.
    return sorted(result.mappings(), key=lambda r: tuple(r[name] for name in order_by))
