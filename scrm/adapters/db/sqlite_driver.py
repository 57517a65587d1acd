"""SQLite for the async engine: statements run on the event loop's thread, slow ones in a worker.

SQLAlchemy's ``sqlite+aiosqlite`` dialect drives this module in place of aiosqlite (``make_engine``
passes it as the DBAPI module; the URL stays ``sqlite+aiosqlite://``). aiosqlite hands every call
to its connection's thread and back — cursor, execute, fetch, close, commit: four or five
hand-offs a statement, each a queue put, a thread wake-up and a loop wake-up. On a 2-core host a
hand-off costs some 160 µs of CPU against 17 µs for the statement itself, so a handler's
transaction of 16 statements spent ten times more on hand-offs than on SQLite (measured by the
welcome bench: 150,000 hand-offs for 1,000 added customers).

Here a statement runs where it is awaited, in one step (execute and fetch together), unless it
could take long enough to stall the loop:

* a read (``SELECT``/``WITH``/``PRAGMA``) runs in the loop under an instruction budget (SQLite's
  progress handler, counted in virtual-machine steps, not time); a read over budget is
  interrupted and run again, whole, in the worker thread. Interrupting a read changes nothing;
* a write runs in the loop when it is keyed: one statement without a sub-select or an IN list
  (an insert, or an update or delete by key), or a batch of up to ``INLINE_MANY`` of them.
  Another one (a claim's
  ``UPDATE … WHERE id IN (SELECT …)``, a set-based insert, a big batch) runs in the loop under
  the same budget when it opens its transaction — interrupted, that transaction (which holds
  nothing but this write: SQLite undoes only the interrupted statement, not an executemany's rows
  before it) is rolled back and the write run again, whole, in the worker — and
  in the worker straight away inside a transaction already holding other writes;
* SQLite's busy handler would sleep inside the loop, so it is off (``busy_timeout=0``) and a
  statement that meets a lock held by another connection waits asynchronously and tries again,
  for up to the connection's ``timeout``, like ``PRAGMA busy_timeout`` did. ``SQLITE_BUSY_SNAPSHOT`` (a read
  transaction that can no longer write) is raised at once, as SQLite's own handler does.

The worker is the loop's default executor; one connection's calls never overlap (SQLAlchemy's
adapter awaits each before the next), so ``check_same_thread`` is off.
"""

from __future__ import annotations

import asyncio
import functools
import re
import sqlite3
import types
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Literal

__version__ = "1.0"

# "first-write": a write opening its transaction, in the loop under the budget (see _run).
Where = Literal["loop", "budget", "first-write", "worker"]

# What SQLAlchemy's aiosqlite adapter reads off the module it drives.
DatabaseError = sqlite3.DatabaseError
Error = sqlite3.Error
IntegrityError = sqlite3.IntegrityError
NotSupportedError = sqlite3.NotSupportedError
OperationalError = sqlite3.OperationalError
ProgrammingError = sqlite3.ProgrammingError
sqlite_version = sqlite3.sqlite_version
sqlite_version_info = sqlite3.sqlite_version_info

# A statement run in the loop under a budget (a read, a write opening its transaction) may take
# this many virtual-machine steps (checked every PROGRESS_STEP): a millisecond or two on the
# 2-core host, some thousands of rows scanned.
PROGRESS_STEP = 1_000
READ_BUDGET_STEPS = 200_000
INLINE_MANY = 64
BUSY_FIRST_WAIT_S = 0.001
BUSY_MAX_WAIT_S = 0.05

_READ = re.compile(r"\s*(SELECT|WITH|PRAGMA|EXPLAIN)\b", re.IGNORECASE)
# A write is keyed (its cost bounded by the rows it names) without a sub-select or an IN list:
# SQLite may plan either as a scan of the whole table.
_NOT_KEYED = re.compile(r"\bSELECT\b|\bIN\s*\(", re.IGNORECASE)
_SQLITE_BUSY = 5


@functools.lru_cache(maxsize=1024)
def _classify(sql: str) -> tuple[bool, bool]:
    """(a read, a keyed write) for ``sql``: see ``_READ`` and ``_NOT_KEYED``. Cached by text:
    SQLAlchemy hands the same compiled string again and again, and the search of a long
    statement for a sub-select cost some µs each time, 14 times an added customer — and ~3.8 µs
    a row of the group commit's multi-row INSERT (thousands of characters, every position tried)."""
    return bool(_READ.match(sql)), not _NOT_KEYED.search(sql)


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    # The extended code, as Python reports it: SQLITE_BUSY_SNAPSHOT (517) is not worth waiting for.
    return getattr(exc, "sqlite_errorcode", None) == _SQLITE_BUSY


class _Budget:
    """SQLite's progress handler while a statement runs in the loop: interrupts it once over
    budget. Installed only for those runs: in the worker it would take the GIL every
    ``PROGRESS_STEP`` steps, from the loop."""

    __slots__ = ("left",)

    def __init__(self) -> None:
        self.left = 0

    def arm(self) -> None:
        self.left = READ_BUDGET_STEPS // PROGRESS_STEP

    def __call__(self) -> int:
        self.left -= 1
        return 1 if self.left < 0 else 0


class _RunNow:
    """Stands in for aiosqlite's request queue, which SQLAlchemy's adapter uses directly to set
    the isolation level: the function runs at once, in the loop."""

    @staticmethod
    def put_nowait(item: tuple[asyncio.Future[Any] | None, Callable[[], Any]]) -> None:
        future, function = item
        try:
            result = function()
        except Exception as exc:  # handed to the awaiting adapter, as aiosqlite does
            if future is not None:
                future.set_exception(exc)
            return
        if future is not None:
            future.set_result(result)


class Connection:
    """An awaitable connection with the part of aiosqlite's interface SQLAlchemy uses."""

    def __init__(self, database: str, *, timeout: float = 5.0, **kwargs: Any) -> None:
        # ``timeout`` is sqlite3's busy timeout, waited out here asynchronously.
        kwargs.pop("check_same_thread", None)
        self._database = database
        self._kwargs = kwargs
        self._busy_timeout_s = timeout
        self._connection: sqlite3.Connection | None = None
        self._budget = _Budget()
        self._tx = _RunNow()
        # SQLAlchemy marks aiosqlite's thread a daemon; there is no thread of our own.
        self._thread = types.SimpleNamespace(daemon=True)

    def __await__(self) -> Any:
        return self._open().__await__()

    async def _open(self) -> Connection:
        # Opening may create and recover the file: not in the loop.
        conn = await asyncio.get_running_loop().run_in_executor(
            None, lambda: sqlite3.connect(self._database, check_same_thread=False, timeout=0, **self._kwargs))
        self._connection = conn
        return self

    @property
    def _conn(self) -> sqlite3.Connection:
        if self._connection is None:
            raise ValueError("no active connection")
        return self._connection

    @property
    def isolation_level(self) -> str | None:
        return self._conn.isolation_level

    # ---------------------------------------------------------------- running a call
    def _where(self, *, read: bool, simple: bool) -> Where:
        """Where a statement runs: see the module's docstring."""
        if read:
            return "budget"
        if simple:
            return "loop"
        # Interrupting a write is harmless only when it is the first of its transaction (the
        # driver begins one just for it, and rolls it back before the rerun), as a claim is.
        return "worker" if self._conn.in_transaction else "first-write"

    async def _run(self, call: Callable[[], Any], where: Where) -> Any:
        """Run ``call`` where told, waiting out other connections' locks asynchronously."""
        wait = BUSY_FIRST_WAIT_S
        deadline: float | None = None
        loop = asyncio.get_running_loop()
        while True:
            try:
                if where != "worker":
                    return self._inline(call, budget=where != "loop")
                return await self._in_worker(call)
            except _OverBudget:
                if where == "first-write" and self._conn.in_transaction:
                    # SQLite undoes only the statement it interrupted: an executemany's rows before
                    # it stay. The transaction holds nothing else (this write opened it), so it
                    # goes, and the rerun starts clean (else those rows would be written twice).
                    self._conn.rollback()
                where = "worker"  # the statement again, whole, in the worker
                continue
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc):
                    raise
                now = loop.time()
                deadline = now + self._busy_timeout_s if deadline is None else deadline
                if now >= deadline:
                    raise
                await asyncio.sleep(wait)
                wait = min(wait * 2, BUSY_MAX_WAIT_S)

    async def _in_worker(self, call: Callable[[], Any]) -> Any:
        """Run ``call`` in the worker. A cancelled caller interrupts the statement and waits for
        the worker to let go of the connection before the cancellation goes on: the rollback or
        close that follows must never touch the connection while the worker still uses it
        (SQLite would crash the process)."""
        future = asyncio.get_running_loop().run_in_executor(None, call)
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            self._conn.interrupt()
            while not future.done():
                try:
                    await asyncio.wait([future])
                except asyncio.CancelledError:
                    continue
            if not future.cancelled():
                future.exception()  # retrieved: the caller is gone
            raise

    def _inline(self, call: Callable[[], Any], *, budget: bool) -> Any:
        if not budget:
            return call()
        self._budget.arm()
        self._conn.set_progress_handler(self._budget, PROGRESS_STEP)
        try:
            return call()
        except sqlite3.OperationalError as exc:
            if self._budget.left < 0 and "interrupt" in str(exc):
                raise _OverBudget from exc
            raise
        finally:
            self._conn.set_progress_handler(None, 0)

    # ---------------------------------------------------------------- aiosqlite's interface
    def cursor(self) -> Cursor:
        return Cursor(self)

    async def commit(self) -> None:
        await self._run(self._conn.commit, "loop")

    async def rollback(self) -> None:
        await self._run(self._conn.rollback, "loop")

    async def close(self) -> None:
        if self._connection is not None:
            conn, self._connection = self._connection, None
            conn.close()

    def stop(self) -> None:
        """Close at once (SQLAlchemy's terminate)."""
        if self._connection is not None:
            conn, self._connection = self._connection, None
            conn.close()

    async def create_function(self, *args: Any, **kwargs: Any) -> None:
        self._conn.create_function(*args, **kwargs)


class _OverBudget(Exception):
    """A read run in the loop took more steps than its budget."""


class Cursor:
    """A cursor whose ``execute`` runs the statement and fetches every row in one step."""

    arraysize = 1

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self._cursor = connection._conn.cursor()
        self._rows: list[Any] = []

    async def __aenter__(self) -> Cursor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    async def execute(self, sql: str, parameters: Sequence[Any] | dict[str, Any] = ()) -> Cursor:
        read, keyed = _classify(sql)
        where = self._connection._where(read=read, simple=keyed)

        def call() -> None:
            self._cursor.execute(sql, parameters)
            self._rows = self._cursor.fetchall() if self._cursor.description else []

        await self._connection._run(call, where)
        return self

    async def executemany(self, sql: str, seq_of_parameters: Iterable[Any]) -> Cursor:
        rows = list(seq_of_parameters)
        where = self._connection._where(read=False, simple=len(rows) <= INLINE_MANY and _classify(sql)[1])
        await self._connection._run(lambda: self._cursor.executemany(sql, rows), where)
        return self

    async def fetchall(self) -> list[Any]:
        rows, self._rows = self._rows, []
        return rows

    async def fetchone(self) -> Any:
        return self._rows.pop(0) if self._rows else None

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        n = size or self.arraysize
        rows, self._rows = self._rows[:n], self._rows[n:]
        return rows

    async def close(self) -> None:
        self._cursor.close()


def connect(database: str, **kwargs: Any) -> Connection:
    """Like ``aiosqlite.connect``: await the result to open it."""
    return Connection(database, **kwargs)
