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
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.selectable import Alias
from sqlalchemy.sql.util import ClauseAdapter
from sqlalchemy.sql.visitors import InternalTraversal

from scrm.adapters.db.types import UTCDateTime


def new_owner_id(prefix: str) -> str:
    """A lease owner id unique to this worker in this process (host, pid, random)."""
    return f"{prefix}:{socket.gethostname()[:20]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


# The claim's time, bound at execution: a condition built with ``NOW`` is built once and reused.
NOW: BindParameter[datetime] = bindparam("now", type_=UTCDateTime())


def claimable(locked_until: InstrumentedAttribute[datetime | None], now: Any = NOW) -> ColumnElement[bool]:
    return or_(locked_until.is_(None), locked_until < now)


class IndexedBy(Alias):
    """The claimed table as an alias that SQLite reads through ``index`` (``INDEXED BY``); any
    other database sees a plain alias. SQLite's planner, without statistics, prefers an index
    that narrows by ``status`` (and the due time) and then sorts what it found, which costs a
    claim every due row of the backlog (rows in flight included); walking the claim index in
    claim order stops after ``limit`` candidates. PostgreSQL plans with statistics."""

    inherit_cache = True
    # The index is part of the statement's cache key: two claims differing only by it compile apart.
    _traverse_internals: Any = [  # noqa: RUF012 (SQLAlchemy's own class-level list)
        *Alias._traverse_internals, ("index", InternalTraversal.dp_string)]
    index: str

    @classmethod
    def of(cls, table: Table, index: str) -> IndexedBy:
        alias = cls._construct(table, name=f"{table.name}_claimed")
        alias.index = index
        return alias


@compiles(IndexedBy, "sqlite")
def _indexed_by(element: IndexedBy, compiler: SQLCompiler, **kw: Any) -> str:
    text: str = compiler.visit_alias(element, **kw)  # type: ignore[no-untyped-call]
    return f"{text} INDEXED BY {element.index}" if kw.get("asfrom") else text


class Claim:
    """Leasing due rows of ``model``: ``due`` is a condition over ``NOW``, built once with its
    statement (one per batch size), so that a claim costs SQLAlchemy a cache lookup, not the
    building, keying and adapting of a correlated sub-select (about a millisecond each time)."""

    def __init__(self, model: type[Any], due: ColumnElement[bool], order_by: list[str], *,
                 extra_values: dict[str, Any] | None = None, sqlite_index: str | None = None) -> None:
        self.model = model
        self.due = due
        self.order_by = order_by
        self.extra_values = extra_values or {}
        # An index whose order is ``order_by`` and whose condition ``due`` names literally
        # (see IndexedBy); None lets the planner choose.
        self.sqlite_index = sqlite_index
        self._statements: dict[int, Update] = {}
        self._source: Table | IndexedBy | None = None
        self._condition: ColumnElement[bool] | None = None

    def _candidates_from(self) -> tuple[Table | IndexedBy, ColumnElement[bool]]:
        """What the candidates are read from and their condition, built once: adapting the
        condition to the alias walks the whole expression (a millisecond a claim, per limit)."""
        if self._source is None or self._condition is None:
            table = self.model.__table__
            condition = and_(self.due, claimable(self.model.locked_until))
            source: Table | IndexedBy = table
            if self.sqlite_index is not None:
                source = IndexedBy.of(table, self.sqlite_index)
                condition = ClauseAdapter(source).traverse(condition)
            self._source, self._condition = source, condition
        return self._source, self._condition

    def statement(self, limit: int) -> Update:
        stmt = self._statements.get(limit)
        if stmt is None:
            table = self.model.__table__
            source, condition = self._candidates_from()
            candidates: Select[Any] = (
                select(source.c.id)
                .where(condition)
                .order_by(*(source.c[name] for name in self.order_by))
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
