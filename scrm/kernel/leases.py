"""Claiming due rows with a lease, the same way for the inbox, the outbox and the scheduler.

PostgreSQL: ``UPDATE ... WHERE id IN (SELECT id ... FOR UPDATE SKIP LOCKED) RETURNING`` so that
several instances never claim the same row. SQLite has one writer at a time, so the same UPDATE
is atomic there without row locks (``with_for_update`` is ignored by its dialect).
Completion is fenced: it only applies while the row is still leased by the same owner.
"""

from __future__ import annotations

import functools
import os
import socket
import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import BindParameter, ColumnElement, Select, Table, Update, and_, bindparam, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from scrm.adapters.db.types import UTCDateTime


def new_owner_id(prefix: str) -> str:
    """A lease owner id unique to this worker in this process (host, pid, random)."""
    return f"{prefix}:{socket.gethostname()[:20]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


# The claim's time, bound at execution: a condition built with ``NOW`` is built once and reused.
NOW: BindParameter[datetime] = bindparam("now", type_=UTCDateTime())


def claimable(locked_until: InstrumentedAttribute[datetime | None], now: Any = NOW) -> ColumnElement[bool]:
    return or_(locked_until.is_(None), locked_until < now)


class Claim:
    """Leasing due rows of ``model``: ``due`` is a condition over ``NOW``, built once with its
    statement (one per batch size), so that a claim costs SQLAlchemy a cache lookup, not the
    building, keying and adapting of a correlated sub-select (about a millisecond each time)."""

    def __init__(self, model: type[Any], due: ColumnElement[bool], order_by: list[str], *,
                 extra_values: dict[str, Any] | None = None) -> None:
        self.model = model
        self.due = due
        self.order_by = order_by
        self.extra_values = extra_values or {}
        self._statements: dict[int, Update] = {}

    def statement(self, limit: int) -> Update:
        stmt = self._statements.get(limit)
        if stmt is None:
            table = self.model.__table__
            candidates: Select[Any] = (
                select(table.c.id)
                .where(and_(self.due, claimable(self.model.locked_until)))
                .order_by(*(table.c[name] for name in self.order_by))
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
            stmt = self._statements[limit] = (
                update(table)
                .where(table.c.id.in_(candidates.scalar_subquery()))
                .values(locked_until=bindparam("lease_until", type_=UTCDateTime()),
                        lease_owner=bindparam("owner"), **self.extra_values)
                .returning(*table.c)
            )
        return stmt

    async def __call__(self, conn: AsyncConnection | AsyncSession, *, now: datetime, lease_s: float, owner: str,
                       limit: int) -> list[Any]:
        """Lease up to ``limit`` due rows to ``owner``; returns their full rows, oldest first."""
        result = await conn.execute(self.statement(limit), {
            "now": now, "lease_until": now + timedelta(seconds=lease_s), "owner": owner})
        # RETURNING gives no order guarantee; callers rely on the claim order.
        return sorted(result.mappings(), key=lambda r: tuple(r[name] for name in self.order_by))


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
    """Lease up to ``limit`` due rows of ``model`` to ``owner`` (``due`` may use ``NOW`` or
    literal times); returns their full rows. For a claim made often, keep a :class:`Claim`."""
    return await Claim(model, due, order_by, extra_values=extra_values)(conn, now=now, lease_s=lease_s,
                                                                      owner=owner, limit=limit)


@functools.cache
def update_leased(table: Table) -> Update:
    """``UPDATE table SET <the columns given as parameters> WHERE id = :_id AND lease_owner = :_owner``,
    built once per table: completing or failing a leased row is fenced by its owner. Execute it
    with ``{"_id": ..., "_owner": ..., column: value, ...}`` (a list of those runs as executemany)."""
    return update(table).where(table.c.id == bindparam("_id"), table.c.lease_owner == bindparam("_owner"))
