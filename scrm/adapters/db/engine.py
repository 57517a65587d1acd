"""Engine and session factory: one code path for SQLite and PostgreSQL.

SQLite gets WAL, foreign keys and synchronous=NORMAL on every connection, and runs through
``sqlite_driver`` (statements in the event loop, slow ones in a worker, locks waited out
asynchronously) instead of aiosqlite's thread hand-offs.
Dialect-specific statements (insert-or-ignore, upsert) live here so the rest of the code does
not branch on the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import socket
import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from sqlalchemy import Insert, Table, event, make_url
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.sqlite.aiosqlite import AsyncAdapt_aiosqlite_dbapi
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import DBAPIError, DisconnectionError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

from scrm.adapters.db import sqlite_driver

SQLITE_BUSY_TIMEOUT_MS = 10_000

# SQLite creates a missing file on connect: a command that only reads would leave an empty file
# behind and then fail with "no such table". `scrm` turns creation off for every sub-command but
# `serve` and `db upgrade` (see ``sqlite_must_exist``); everything else (tests, the service) may create.
_SQLITE_MAY_CREATE: ContextVar[bool] = ContextVar("scrm_sqlite_may_create", default=True)


class DatabaseNotReady(Exception):
    """The database cannot be used as it is; the message says what to run."""


class DatabaseMissing(DatabaseNotReady):
    def __init__(self, path: Path) -> None:
        super().__init__(f"database {path.absolute()} does not exist yet: run `scrm db upgrade` (or `scrm serve`) "
                         "first, or check [database] url and the working directory")
        self.path = path


def sqlite_file(url: str) -> Path | None:
    """The file of an SQLite URL; None for PostgreSQL and in-memory SQLite."""
    u = make_url(url)
    if u.get_backend_name() != "sqlite" or not u.database or u.database == ":memory:":
        return None
    return Path(u.database)


def display_url(url: str) -> str:
    """The URL for messages: no password."""
    return make_url(url).render_as_string(hide_password=True)


@contextlib.contextmanager
def sqlite_must_exist() -> Iterator[None]:
    """Inside: ``make_engine`` on a missing SQLite file raises DatabaseMissing instead of creating it."""
    token = _SQLITE_MAY_CREATE.set(False)
    try:
        yield
    finally:
        _SQLITE_MAY_CREATE.reset(token)


def _sqlite_pragmas(dbapi_conn: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def make_engine(url: str, *, echo: bool = False, pool_size: int = 5) -> AsyncEngine:
    if url.startswith("sqlite"):
        path = sqlite_file(url)
        if path is not None and not _SQLITE_MAY_CREATE.get() and not path.exists():
            raise DatabaseMissing(path)
        # The driver (``sqlite_driver``) waits out another connection's lock asynchronously,
        # for ``timeout`` seconds, where PRAGMA busy_timeout would sleep inside the event loop.
        engine = create_async_engine(url, echo=echo, pool_size=pool_size, max_overflow=pool_size,
                                     module=AsyncAdapt_aiosqlite_dbapi(sqlite_driver, sqlite3),
                                     connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    engine = create_async_engine(url, echo=echo, pool_size=pool_size, max_overflow=pool_size)
    ping_when_idle(engine, PING_AFTER_IDLE_S)
    return engine


# SQLAlchemy's ``pool_pre_ping`` pings on every checkout — with asyncpg a BEGIN, a ``;`` and a
# ROLLBACK, three round trips before each page view, transaction and claim (~6 % of a console
# page's CPU on 1,000,000 customers). A connection given back a moment ago is as alive as that ping
# would show; what the ping is for — PostgreSQL restarted or failed over, a firewall dropping an
# idle connection — happens to connections that sat idle. So only those are pinged.
PING_AFTER_IDLE_S = 2.0
_IDLE_SINCE = "scrm_idle_since"


def ping_when_idle(engine: AsyncEngine, after_s: float) -> None:
    """Ping a pooled connection at checkout when it has been idle ``after_s`` seconds or more (0:
    always, as ``pool_pre_ping``); a dead one is replaced (the pool's own retry), unseen by the caller."""
    pool = engine.sync_engine.pool

    def idle_from_now(_dbapi_connection: DBAPIConnection, record: ConnectionPoolEntry) -> None:
        # Connection liveness is the machine's own elapsed time, not the service's (injected) clock.
        record.info[_IDLE_SINCE] = time.monotonic()

    def check(dbapi_connection: DBAPIConnection, record: ConnectionPoolEntry, _proxy: Any) -> None:
        since = record.info.get(_IDLE_SINCE)
        if since is not None and time.monotonic() - since < after_s:
            return
        try:
            dbapi_connection.ping()  # the asyncpg adapter's, run in the greenlet
        except Exception as exc:  # any failure: the pool discards this connection and takes another
            raise DisconnectionError(f"idle connection failed its ping: {exc}") from exc

    event.listen(pool, "connect", idle_from_now)
    event.listen(pool, "checkin", idle_from_now)
    event.listen(pool, "checkout", check)


class _SqliteWriterSession(AsyncSession):
    """SQLite has one writer: a session waits for this process's write turn on an asyncio lock
    at its first write (a DML statement, or a flush of ORM changes) and keeps it until it
    commits, rolls back or closes, instead of meeting SQLite's busy handler, which polls with
    sleeps of up to 100 ms and hands the lock over late (16 concurrent handlers ran half as fast
    as with this). Only a speed-up: SQLite's own locking still guards every write, including
    those made outside sessions (the group-commit writer, outbox marks)."""

    lock: asyncio.Lock

    _holding = False

    async def _take_turn(self) -> None:
        if not self._holding:
            await self.lock.acquire()
            self._holding = True

    async def execute(self, statement: Any, *args: Any, **kwargs: Any) -> Any:
        if getattr(statement, "is_dml", False):
            await self._take_turn()
        return await super().execute(statement, *args, **kwargs)

    async def flush(self, objects: Any = None) -> None:
        if self.new or self.dirty or self.deleted:
            await self._take_turn()
        await super().flush(objects)

    def _release(self) -> None:
        if self._holding:
            self._holding = False
            self.lock.release()

    async def commit(self) -> None:
        try:
            await super().commit()
        finally:
            self._release()

    async def rollback(self) -> None:
        try:
            await super().rollback()
        finally:
            self._release()

    async def close(self) -> None:
        try:
            await super().close()
        finally:
            self._release()


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    if engine.dialect.name == "sqlite":
        cls = type("SqliteWriterSession", (_SqliteWriterSession,), {"lock": asyncio.Lock()})
        return async_sessionmaker(engine, expire_on_commit=False, class_=cls)
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


def insert_ignore(dialect_name: str, table: Table, conflict: Iterable[str]) -> Insert:
    """INSERT ... ON CONFLICT (conflict) DO NOTHING for either dialect, without values: pass the
    row (a dict) or rows (a list of dicts) to ``execute`` beside it.

    One statement object per table and conflict, built once: SQLAlchemy then finds its compiled
    form by a memoized cache key, where a statement carrying ``.values(rows)`` is rebuilt, keyed
    and adapted on every call (measured: 840 µs vs 390 µs for a one-row upsert on SQLite; 117 µs
    vs 37 µs a row for batches of 32). A list of rows runs as one ``executemany``."""
    return _insert_ignore(dialect_name, table, tuple(conflict))


def upsert(dialect_name: str, table: Table, conflict: Iterable[str], update: Iterable[str]) -> Insert:
    """INSERT ... ON CONFLICT (conflict) DO UPDATE SET update-columns = excluded values, built once
    per table and columns like ``insert_ignore``; the rows go to ``execute``."""
    return _upsert(dialect_name, table, tuple(conflict), tuple(update))


@functools.cache
def _insert_ignore(dialect_name: str, table: Table, conflict: tuple[str, ...]) -> Insert:
    if dialect_name == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing(index_elements=list(conflict))
    return sqlite.insert(table).on_conflict_do_nothing(index_elements=list(conflict))


@functools.cache
def _upsert(dialect_name: str, table: Table, conflict: tuple[str, ...], update: tuple[str, ...]) -> Insert:
    if dialect_name == "postgresql":
        pg = postgresql.insert(table)
        return pg.on_conflict_do_update(index_elements=list(conflict), set_={c: pg.excluded[c] for c in update})
    lite = sqlite.insert(table)
    return lite.on_conflict_do_update(index_elements=list(conflict), set_={c: lite.excluded[c] for c in update})


# ------------------------------------------------------------------ errors an operator fixes
def describe_db_error(exc: BaseException, url: str) -> str | None:
    """One line for a database problem the operator causes and fixes (unreachable, wrong role,
    missing database, not migrated), or None: anything else is a bug and keeps its traceback."""
    if url.startswith("sqlite"):
        return _describe_sqlite(exc, url)
    return _describe_postgres(exc, url)


def _describe_sqlite(exc: BaseException, url: str) -> str | None:
    if not isinstance(exc, OperationalError):
        return None
    detail = str(exc.orig)
    where = sqlite_file(url) or url
    if detail.startswith(("no such table", "no such column")):
        return f"database {where} is not migrated ({detail}): run `scrm db upgrade`"
    if detail.startswith("unable to open database file"):
        return (f"cannot open the SQLite database {where}: does its folder exist and may scrm write there? "
                "check [database] url")
    return None


# SQLSTATEs of mistakes in [database] url or a skipped migration, and what to say about them.
_PG_STATES = {
    "28000": "PostgreSQL at {at} refused role {user!r} ({detail}): check the user in [database] url",
    "28P01": "PostgreSQL at {at} refused role {user!r} ({detail}): check the password in [database] url",
    "3D000": "database {db!r} does not exist on PostgreSQL at {at}: create it (createdb {db}), "
             "then run `scrm db upgrade`",
    "42P01": "database {db!r} on PostgreSQL at {at} is not migrated ({detail}): run `scrm db upgrade`",
    "42703": "database {db!r} on PostgreSQL at {at} is not migrated ({detail}): run `scrm db upgrade`",
}


def _describe_postgres(exc: BaseException, url: str) -> str | None:
    u = make_url(url)
    fields = {"at": f"{u.host or 'localhost'}:{u.port or 5432}", "user": u.username or "", "db": u.database or ""}
    if isinstance(exc, DBAPIError):
        template = _PG_STATES.get(str(getattr(exc.orig, "sqlstate", "")))
        return template.format(detail=str(exc.orig).strip(), **fields) if template else None
    # asyncpg raises socket errors unwrapped; only its own, not those of an HTTP client, are ours.
    if isinstance(exc, OSError | TimeoutError) and _raised_in(exc, "asyncpg"):
        if isinstance(exc, ConnectionRefusedError):
            why = "connection refused; is the server running?"
        elif isinstance(exc, socket.gaierror):
            why = f"unknown host {u.host!r}"
        elif isinstance(exc, TimeoutError):
            why = "timed out"
        else:
            why = exc.strerror or str(exc)
        return f"cannot connect to PostgreSQL at {fields['at']} ({why}): check [database] url"
    return None


def _raised_in(exc: BaseException, package: str) -> bool:
    tb = exc.__traceback__
    while tb is not None:
        if f"/{package}/" in tb.tb_frame.f_code.co_filename.replace("\\", "/"):
            return True
        tb = tb.tb_next
    return False
