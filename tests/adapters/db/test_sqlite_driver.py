"""The SQLite driver: statements in the event loop, long reads and set-based writes in a worker,
another connection's lock waited out without blocking the loop."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine

from scrm.adapters.db import sqlite_driver
from scrm.adapters.db.engine import make_engine, sqlite_file

# Rows of a recursive count: far more virtual-machine steps than a read may take in the loop.
LONG = 200_000
LONG_COUNT = f"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {LONG}) " \
             "SELECT count(*), max(where_am_i()) FROM n"


@pytest.fixture
async def engine(sqlite_url: str) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(sqlite_url)

    def where_am_i() -> str:  # which thread SQLite evaluates the statement on
        return "loop" if threading.current_thread() is threading.main_thread() else "worker"

    @event.listens_for(engine.sync_engine, "connect")
    def _register(dbapi_conn: object, _record: object) -> None:
        dbapi_conn.create_function("where_am_i", 0, where_am_i)  # type: ignore[attr-defined]

    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE probe (k INTEGER PRIMARY KEY, v TEXT)"))
    try:
        yield engine
    finally:
        await engine.dispose()


async def test_a_short_read_runs_in_the_loop_and_a_long_one_moves_to_the_worker(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        assert (await conn.execute(text("SELECT where_am_i()"))).scalar_one() == "loop"
        count, where = (await conn.execute(text(LONG_COUNT))).one()
    # The interrupted first run is not seen by the caller: the whole result comes from the worker.
    assert (count, where) == (LONG, "worker")


async def test_a_keyed_write_runs_in_the_loop_and_a_set_based_one_after_other_writes_in_the_worker(
        engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(text("INSERT INTO probe (k, v) VALUES (1, where_am_i())"))
        await conn.execute(text("INSERT INTO probe (k, v) SELECT 2, where_am_i()"))
        rows = (await conn.execute(text("SELECT k, v FROM probe ORDER BY k"))).all()
    assert [tuple(r) for r in rows] == [(1, "loop"), (2, "worker")]


async def test_a_set_based_write_opening_its_transaction_runs_in_the_loop_until_it_outgrows_its_budget(
        engine: AsyncEngine) -> None:
    numbers = LONG_COUNT.split(" SELECT count")[0]  # the recursive CTE alone

    async def values() -> list[tuple[object, ...]]:
        async with engine.connect() as conn:
            return [tuple(r) for r in (await conn.execute(text("SELECT k, v FROM probe ORDER BY k"))).all()]

    async with engine.begin() as conn:  # like a claim: the first write of its transaction, small
        await conn.execute(text("INSERT INTO probe (k, v) SELECT i, where_am_i() FROM ("
                                + numbers.replace(str(LONG), "3") + " SELECT i FROM n)"))
    assert await values() == [(1, "loop"), (2, "loop"), (3, "loop")]
    async with engine.begin() as conn:  # too long for the loop: interrupted, rolled back, redone whole
        await conn.execute(text(f"UPDATE probe SET v = (SELECT max(where_am_i()) || count(*) FROM ({numbers} "
                                "SELECT i FROM n))"))
    assert await values() == [(k, f"worker{LONG}") for k in (1, 2, 3)]


async def test_a_write_waits_for_another_connections_lock_without_stopping_the_loop(
        engine: AsyncEngine, sqlite_url: str) -> None:
    path = sqlite_file(sqlite_url)
    assert path is not None
    holder = sqlite3.connect(path, timeout=0)  # another process's writer, as far as SQLite knows
    holder.execute("BEGIN IMMEDIATE")
    ran_on = asyncio.Event()

    async def ticking() -> None:  # 200 turns of the loop while the writer waits
        for _ in range(200):
            await asyncio.sleep(0)
        ran_on.set()

    async def write() -> None:
        async with engine.begin() as conn:
            await conn.execute(text("INSERT INTO probe (k, v) VALUES (7, 'waited')"))

    ticker = asyncio.create_task(ticking())
    writer = asyncio.create_task(write())
    try:
        await asyncio.wait_for(ran_on.wait(), timeout=10)
        assert not writer.done()
        holder.rollback()
        await asyncio.wait_for(writer, timeout=10)
    finally:
        ticker.cancel()
        holder.close()
    async with engine.connect() as conn:
        assert (await conn.execute(text("SELECT v FROM probe WHERE k = 7"))).scalar_one() == "waited"


async def test_a_lock_held_past_the_timeout_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "locked.db"
    holder = sqlite3.connect(path, timeout=0)
    holder.execute("CREATE TABLE t (x)")
    holder.commit()
    holder.execute("BEGIN IMMEDIATE")
    conn = await sqlite_driver.connect(str(path), timeout=0.05)
    try:
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            await conn.cursor().execute("INSERT INTO t VALUES (1)")
    finally:
        await conn.close()
        holder.close()


async def test_a_stale_snapshot_is_raised_at_once_not_waited_for(tmp_path: Path) -> None:
    path = tmp_path / "snapshot.db"
    other = sqlite3.connect(path, timeout=0)
    other.execute("PRAGMA journal_mode=WAL")
    other.execute("CREATE TABLE t (x)")
    other.commit()
    conn = await sqlite_driver.connect(str(path), timeout=3600)  # waiting would hang the test
    try:
        reader = conn.cursor()
        await reader.execute("BEGIN")
        await reader.execute("SELECT * FROM t")  # the transaction's snapshot
        other.execute("INSERT INTO t VALUES (1)")
        other.commit()  # written after that snapshot
        with pytest.raises(sqlite3.OperationalError) as info:
            await reader.execute("INSERT INTO t VALUES (2)")
        assert info.value.sqlite_errorname == "SQLITE_BUSY_SNAPSHOT"
    finally:
        await conn.close()
        other.close()


async def test_a_caller_cancelled_mid_statement_leaves_the_connection_only_when_the_worker_let_go(
        sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    loop = asyncio.get_running_loop()
    in_worker = asyncio.Event()

    def step() -> int:  # called for every row; tells the loop once the worker runs the statement
        if threading.current_thread() is not threading.main_thread() and not in_worker.is_set():
            loop.call_soon_threadsafe(in_worker.set)
        return 1

    @event.listens_for(engine.sync_engine, "connect")
    def _register(dbapi_conn: object, _record: object) -> None:
        dbapi_conn.create_function("step", 0, step)  # type: ignore[attr-defined]

    endless = ("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100000000) "
               "SELECT sum(step()) FROM n")

    async def read() -> None:
        async with engine.connect() as conn:
            await conn.execute(text(endless))

    task = asyncio.create_task(read())
    try:
        await asyncio.wait_for(in_worker.wait(), timeout=30)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task  # interrupted, then the connection went back to the pool: no crash
        async with engine.connect() as conn:  # and it is still good
            assert (await conn.execute(text("SELECT 41 + 1"))).scalar_one() == 42
    finally:
        await engine.dispose()


async def test_a_big_batch_opening_its_transaction_and_outgrowing_its_budget_is_written_once(
        engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    """An executemany is many statements: interrupted part-way, SQLite undoes the one it was in,
    not the rows before it, so the rerun in the worker starts from an empty transaction."""
    monkeypatch.setattr(sqlite_driver, "READ_BUDGET_STEPS", 5 * sqlite_driver.PROGRESS_STEP)
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE plain (v INTEGER)"))  # no key: a second copy would show
    rows = [{"v": i} for i in range(5_000)]
    async with engine.begin() as conn:
        await conn.execute(text("INSERT INTO plain (v) VALUES (:v)"), rows)
    async with engine.connect() as conn:
        count, distinct = (await conn.execute(text("SELECT count(*), count(DISTINCT v) FROM plain"))).one()
    assert (count, distinct) == (5_000, 5_000)
