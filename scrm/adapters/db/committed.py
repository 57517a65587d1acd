"""Statements that each return one column, run in a transaction of their own and committed: the
group-commit writer's batch, on SQLite straight on the pooled connection's driver.

Through SQLAlchemy's async layer a batch's ``begin``, ``exec_driver_sql`` and ``commit`` are three
greenlet spawns (each a pair of stack switches) besides the pool's checkout and checkin, and
the result's rows are built as SQLAlchemy rows: some 500 µs of a batch of 31 rows on the 2-core
host, more than the insert itself. On ``sqlite_driver`` the statements run on the driver's own
cursor (the sqlite3 module opens the transaction at the first INSERT, as under SQLAlchemy) and
the driver commits; on any failure, a cancellation included, the driver rolls back before the
connection goes back to the pool. Other drivers go through SQLAlchemy as before.

``committed_if_counted`` is for inserts whose ``RETURNING`` only confirms what was expected: on
SQLite, ``RETURNING`` cost ~20 % of a multi-row insert-or-ignore (~3.5 µs a row of the inbox,
its rows buffered and handed back one by one). Without it, the statements' row counts tell whether
every row went in; when they did the transaction commits, and when they did not (a duplicate
delivery) it is rolled back and the caller runs the statements with ``RETURNING``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from scrm.adapters.db import sqlite_driver

Statement = tuple[str, Sequence[Any]]


async def first_column_committed(conn: AsyncConnection, statements: Sequence[Statement]) -> list[Any]:
    """Run ``statements`` on ``conn`` (no transaction open) in one transaction and commit it; the
    first column of every row they returned. Raises whatever the driver raised, rolled back."""
    driver = _driver_of(conn)
    if not isinstance(driver, sqlite_driver.Connection):
        async with conn.begin():
            return [row[0] for sql, values in statements for row in await conn.exec_driver_sql(sql, tuple(values))]
    keys, _committed = await _on_driver(driver, statements, returning=True, commit_if=lambda _changed: True)
    return keys


def counts_rows(conn: AsyncConnection) -> bool:
    """``committed_if_counted`` runs on ``conn`` (its driver is ``sqlite_driver``)."""
    return isinstance(_driver_of(conn), sqlite_driver.Connection)


async def committed_if_counted(conn: AsyncConnection, statements: Sequence[Statement], expected: int) -> bool:
    """Run ``statements`` on ``conn`` (``counts_rows``, no transaction open) in one transaction;
    commit it and return True when together they changed exactly ``expected`` rows, else roll it
    back and return False. Raises whatever the driver raised, rolled back."""
    _keys, committed = await _on_driver(_driver_of(conn), statements, returning=False,
                                        commit_if=lambda changed: changed == expected)
    return committed


async def _on_driver(driver: Any, statements: Sequence[Statement], *, returning: bool,
                     commit_if: Callable[[int], bool]) -> tuple[list[Any], bool]:
    """Run ``statements`` on the SQLite ``driver`` in one transaction (the sqlite3 module opens it
    at the first INSERT); commit when ``commit_if(rows changed)`` holds, else roll back. The first
    column of the rows they returned (``returning``; else their row counts are summed) and whether
    it committed."""
    keys: list[Any] = []
    changed = 0
    try:
        for sql, values in statements:
            cursor = driver.cursor()
            try:
                await cursor.execute(sql, values)
                if returning:
                    keys.extend(row[0] for row in await cursor.fetchall())
                else:
                    changed += cursor.rowcount
            finally:
                await cursor.close()
        if commit_if(changed):
            await driver.commit()
            return keys, True
    except BaseException:
        # Runs in the loop, without suspending, so even a cancelled batch leaves no transaction
        # open on a pooled connection (SQLAlchemy believes none was begun and would not roll back).
        # A failed rollback leaves the pool's own reset to roll back or discard the connection.
        with contextlib.suppress(Exception):
            await driver.rollback()
        raise
    await driver.rollback()
    return keys, False


def _driver_of(conn: AsyncConnection) -> Any:
    # The pooled connection's driver object, without the greenlet spawn of get_raw_connection().
    sync = conn.sync_connection
    if sync is None:
        raise RuntimeError("connection is not started")
    return sync.connection.driver_connection
