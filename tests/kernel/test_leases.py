"""Claims: on SQLite the inbox's and the outbox's claims walk their claim index in claim order
and stop at the limit, instead of reading and sorting every due row (a burst of n events cost
n claims of O(n) each); other databases get the same statement without the index clause."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import async_sessionmaker

from scrm.adapters.db.engine import make_engine
from scrm.kernel.clock import FakeClock
from scrm.kernel.config import InboxSettings, OutboxSettings
from scrm.kernel.inbox import Inbox
from scrm.kernel.leases import Claim
from scrm.kernel.outbox import PRIORITY_WELCOME, Outbox

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


async def _plan(url: str, claim: Claim) -> list[str]:
    """SQLite's query plan of ``claim`` as it runs (its SQL and parameters caught on the way)."""
    engine = make_engine(url)
    ran: list[tuple[str, Any]] = []

    def catch(conn: Any, cursor: Any, statement: str, params: Any, context: Any, executemany: bool) -> None:
        if "lease_owner" in statement and not ran:
            ran.append((statement, params))

    event.listen(engine.sync_engine, "before_cursor_execute", catch)
    try:
        async with engine.begin() as conn:
            await claim(conn, now=NOW, lease_s=60, owner="me", limit=8)
        statement, params = ran[0]
        async with engine.connect() as conn:
            rows = await conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", tuple(params))
            return [str(row[3]) for row in rows]
    finally:
        await engine.dispose()


def _walks(plan: list[str], index: str) -> bool:
    return any(f"USING INDEX {index}" in step for step in plan) and not any("TEMP B-TREE" in s for s in plan)


async def test_the_inbox_claim_walks_its_claim_index_on_sqlite(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    inbox = Inbox(engine, async_sessionmaker(engine), InboxSettings(), FakeClock(NOW))
    await engine.dispose()
    plan = await _plan(sqlite_url, inbox._claim_due)
    assert _walks(plan, "ix_inbox_claim"), plan


async def test_both_outbox_claims_walk_their_claim_index_on_sqlite(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    outbox = Outbox(engine, async_sessionmaker(engine), OutboxSettings(), FakeClock(NOW), None)
    await engine.dispose()
    for max_priority in (None, PRIORITY_WELCOME):
        plan = await _plan(sqlite_url, outbox._claim_for(max_priority))
        assert _walks(plan, "ix_outbox_claim"), (max_priority, plan)


async def test_a_claim_without_a_named_index_lets_sqlite_choose(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    inbox = Inbox(engine, async_sessionmaker(engine), InboxSettings(), FakeClock(NOW))
    await engine.dispose()
    claim = Claim(inbox._claim_due.model, inbox._claim_due.due, ["priority", "id"])
    plan = await _plan(sqlite_url, claim)
    assert not any("ix_inbox_claim" in step for step in plan), plan  # the reason IndexedBy exists


async def test_postgresql_gets_the_claim_without_the_index_clause(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    inbox = Inbox(engine, async_sessionmaker(engine), InboxSettings(), FakeClock(NOW))
    await engine.dispose()
    sql = str(inbox._claim_due.statement(8).compile(dialect=postgresql.dialect()))
    assert "INDEXED BY" not in sql
    assert "FOR UPDATE SKIP LOCKED" in sql
    # Written into the SQL, so that the partial claim index applies there too.
    assert "inbox_event_claimed.status = 'pending'" in sql


async def test_a_claim_skips_rows_in_flight_and_takes_the_next_in_claim_order(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    inbox = Inbox(engine, async_sessionmaker(engine), InboxSettings(), FakeClock(NOW))
    try:
        async with engine.begin() as conn:
            for i, priority in enumerate([100, 0, 100, 0, 100]):
                await conn.execute(text(
                    "INSERT INTO inbox_event (dedup_key, source, received_at, raw, msg_type, event, change_type, "
                    "status, attempts, next_attempt_at, priority, order_key) "
                    "VALUES (:k, 'wecom', :at, '<xml/>', '', '', '', 'pending', 0, :at, :p, :o)"),
                    {"k": f"k{i}", "at": "2026-12-07 11:00:00", "p": priority, "o": f"c{i}"})
        async with engine.begin() as conn:
            first = await inbox._claim_due(conn, now=NOW, lease_s=60, owner="a", limit=2)
        async with engine.begin() as conn:
            second = await inbox._claim_due(conn, now=NOW, lease_s=60, owner="b", limit=2)
        assert [r["dedup_key"] for r in first] == ["k1", "k3"]
        assert [r["dedup_key"] for r in second] == ["k0", "k2"]
    finally:
        await engine.dispose()
