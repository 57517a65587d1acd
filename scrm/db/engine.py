"""Engine and session factory: one code path for SQLite and PostgreSQL.

SQLite gets WAL, a busy timeout, foreign keys and synchronous=NORMAL on every connection.
Dialect-specific statements (insert-or-ignore, upsert) live here so the rest of the code does
not branch on the database.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import Insert, Table, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

SQLITE_BUSY_TIMEOUT_MS = 10_000


def _sqlite_pragmas(dbapi_conn: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def make_engine(url: str, *, echo: bool = False, pool_size: int = 5) -> AsyncEngine:
    if url.startswith("sqlite"):
        engine = create_async_engine(url, echo=echo)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    return create_async_engine(url, echo=echo, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def dialect_of(target: AsyncEngine | AsyncSession | AsyncConnection) -> str:
    """"sqlite" or "postgresql", for the statement helpers below."""
    if isinstance(target, AsyncSession):
        return target.get_bind().dialect.name
    return target.dialect.name


def table_of(model: type[Any]) -> Table:
    """The Core table of an ORM model, typed (``Model.__table__`` is a FromClause to mypy)."""
    table = model.__table__
    assert isinstance(table, Table)
    return table


def insert_ignore(dialect_name: str, table: Table, rows: Sequence[Mapping[str, Any]] | Mapping[str, Any],
                  conflict: Iterable[str]) -> Insert:
    """INSERT ... ON CONFLICT (conflict) DO NOTHING for either dialect."""
    cols = list(conflict)
    if dialect_name == "postgresql":
        return postgresql.insert(table).values(rows).on_conflict_do_nothing(index_elements=cols)
    return sqlite.insert(table).values(rows).on_conflict_do_nothing(index_elements=cols)


def insert_ignore_many(dialect_name: str, table: Table, conflict: Iterable[str]) -> Insert:
    """The same statement without bound values, for ``execute(stmt, rows)``.

    A statement without ``.values(rows)`` is cached by SQLAlchemy and batched by its
    insertmanyvalues; a multi-row ``.values()`` is rebuilt and recompiled on every call
    (measured: 117 µs vs 37 µs per row at 32 rows a batch).
    """
    cols = list(conflict)
    if dialect_name == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing(index_elements=cols)
    return sqlite.insert(table).on_conflict_do_nothing(index_elements=cols)


def upsert(dialect_name: str, table: Table, rows: Sequence[Mapping[str, Any]] | Mapping[str, Any],
           conflict: Iterable[str], update: Iterable[str]) -> Insert:
    """INSERT ... ON CONFLICT (conflict) DO UPDATE SET update-columns = excluded values."""
    cols = list(conflict)
    if dialect_name == "postgresql":
        pg = postgresql.insert(table).values(rows)
        return pg.on_conflict_do_update(index_elements=cols, set_={c: pg.excluded[c] for c in update})
    lite = sqlite.insert(table).values(rows)
    return lite.on_conflict_do_update(index_elements=cols, set_={c: lite.excluded[c] for c in update})
