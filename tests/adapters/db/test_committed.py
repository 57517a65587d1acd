"""A batch's statements in a transaction of their own: committed together or not at all, and the
pooled connection is left with no transaction open either way (SQLite on its driver, PostgreSQL
through SQLAlchemy)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from scrm.adapters.db.committed import committed_if_counted, counts_rows, first_column_committed
from scrm.adapters.db.engine import make_engine, table_of
from scrm.adapters.db.multirow import MultiRowInsertIgnore
from scrm.kernel.inbox import Inbox
from scrm.kernel.models import InboxEvent

STAMPED = ("received_at", "next_attempt_at")
T0 = datetime(2026, 12, 7, 21, 0, tzinfo=UTC)


def row(key: str) -> dict[str, Any]:
    return Inbox._row("wecom", key, f"<xml>{key}</xml>", "event", "e", "")  # as the callback queues it


def inbox_insert(conn: AsyncConnection) -> MultiRowInsertIgnore:
    """The group commit's statement for the inbox, as its writer makes it."""
    return MultiRowInsertIgnore(table_of(InboxEvent), list(row("x")), "dedup_key", conn.dialect, stamped=STAMPED)


async def stored_keys(url: str) -> set[str]:
    engine = make_engine(url)  # another engine: sees only what was committed
    try:
        async with engine.connect() as conn:
            return set((await conn.execute(select(InboxEvent.dedup_key))).scalars())
    finally:
        await engine.dispose()


async def test_statements_commit_together_and_return_their_first_column(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        async with engine.connect() as conn:
            insert = inbox_insert(conn)
            insert.max_rows = 2  # three rows: two statements, one transaction
            statements = insert.statements([row("a"), row("b"), row("c")], stamp=None)
            assert len(statements) == 2
            with pytest.raises(Exception):  # noqa: B017 (NOT NULL received_at: the driver's own error)
                await first_column_committed(conn, statements)
            statements = insert.statements([row("a"), row("b"), row("c")], stamp=T0)
            assert sorted(await first_column_committed(conn, statements)) == ["a", "b", "c"]
            # Again: nothing new, and the connection took the next batch (no transaction left open).
            assert await first_column_committed(conn, insert.statements([row("a"), row("d")], T0)) == ["d"]
    finally:
        await engine.dispose()
    assert await stored_keys(db_url) == {"a", "b", "c", "d"}


async def test_a_failing_statement_rolls_back_the_ones_before_it(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        async with engine.connect() as conn:
            insert = inbox_insert(conn)
            good = insert.statements([row("a")], T0)
            bad = (text("SELECT no_such_column FROM inbox_event").text, ())
            with pytest.raises(Exception):  # noqa: B017 (the driver's own error, per database)
                await first_column_committed(conn, [*good, bad])
            assert not conn.in_transaction()
            assert await first_column_committed(conn, insert.statements([row("b")], T0)) == ["b"]
        # The pool hands the connection out again: a session's write is not blocked by a stale lock.
        async with engine.begin() as conn:
            await conn.execute(text("UPDATE inbox_event SET attempts = 1"))
    finally:
        await engine.dispose()
    assert await stored_keys(db_url) == {"b"}


async def test_counted_rows_commit_only_when_every_row_went_in(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    try:
        async with engine.connect() as conn:
            assert counts_rows(conn)
            insert = inbox_insert(conn)
            insert.max_rows = 2  # three rows (sent as 2 + 2, the last one repeated): two statements
            rows = [row("a"), row("b"), row("c")]
            assert await committed_if_counted(conn, insert.statements(rows, T0, returning=False), 3)
            # "c" is stored already: two rows of three went in, so neither stays.
            rows = [row("d"), row("e"), row("c")]
            assert not await committed_if_counted(conn, insert.statements(rows, T0, returning=False), 3)
            assert not conn.in_transaction()
            assert await first_column_committed(conn, insert.statements(rows, T0)) == ["d", "e"]
    finally:
        await engine.dispose()
    assert await stored_keys(sqlite_url) == {"a", "b", "c", "d", "e"}
