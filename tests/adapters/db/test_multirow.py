"""The multi-row insert-or-ignore: which keys it reports new, and rows stored exactly as the ORM
path stores them (UTC datetimes, NULLs), on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from scrm.adapters.db.committed import first_column_committed
from scrm.adapters.db.engine import make_engine, table_of
from scrm.adapters.db.multirow import MultiRowInsertIgnore
from scrm.kernel.models import InboxEvent

T0 = datetime(2026, 12, 7, 10, 0, 0, tzinfo=UTC)  # microsecond 0: SQLite's text form must still carry it
CHINA = T0.astimezone(ZoneInfo("Asia/Shanghai"))  # the same instant, written in another zone


async def inserted(conn: AsyncConnection, stmt: MultiRowInsertIgnore, rows: list[dict[str, Any]],
                   stamp: Any = None) -> set[Any]:
    """The keys ``stmt`` reports new for ``rows``, run as the group-commit writer runs a batch."""
    return set(await first_column_committed(conn, stmt.statements(rows, stamp)))


def row(key: str, *, at: datetime = T0, order_key: str = "") -> dict[str, Any]:
    return {"dedup_key": key, "source": "wecom", "received_at": at, "raw": f"<xml>{key}</xml>", "msg_type": "event",
            "event": "e", "change_type": "", "status": "pending", "attempts": 0, "next_attempt_at": at,
            "priority": 100, "order_key": order_key}


async def test_reports_only_new_keys_and_stores_rows_like_the_orm(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        async with engine.connect() as conn:
            stmt = MultiRowInsertIgnore(table_of(InboxEvent), list(row("x")), "dedup_key", conn.dialect)
            assert await inserted(conn, stmt, [row("a")]) == {"a"}
            # 5 rows (sent as 8: the last repeated), one already stored, one twice in the batch.
            later = T0 + timedelta(microseconds=123456)
            batch = [row("a"), row("b", at=later), row("c", at=CHINA), row("b"), row("d", order_key="customer:d")]
            assert await inserted(conn, stmt, batch) == {"b", "c", "d"}
            stmt.max_rows = 2  # more rows than one statement may carry: several statements
            assert await inserted(conn, stmt, [row(k) for k in "efgab"]) == {"e", "f", "g"}
        async with engine.connect() as conn:
            stored = {r.dedup_key: r for r in (await conn.execute(select(InboxEvent.__table__))).all()}
            # The ORM's own reading, so a text form the ORM cannot compare would show here.
            due = set((await conn.execute(select(InboxEvent.dedup_key).where(InboxEvent.received_at <= T0))).scalars())
    finally:
        await engine.dispose()
    assert sorted(stored) == list("abcdefg")
    assert stored["b"].received_at == T0 + timedelta(microseconds=123456)  # the first "b" won
    assert stored["c"].received_at == T0  # 18:00 in Shanghai is 10:00 UTC
    assert stored["d"].order_key == "customer:d"
    assert stored["a"].locked_until is None and stored["a"].raw == "<xml>a</xml>"
    assert due == set("acdefg")


async def test_fits_only_rows_with_exactly_its_columns(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        async with engine.connect() as conn:
            stmt = MultiRowInsertIgnore(table_of(InboxEvent), list(row("x")), "dedup_key", conn.dialect)
    finally:
        await engine.dispose()
    assert stmt.fits(row("y"))
    assert not stmt.fits({**row("y"), "last_error": None})
    assert not stmt.fits({k: v for k, v in row("y").items() if k != "order_key"})


async def test_each_datetime_is_stored_as_given_when_rows_share_or_differ(db_url: str) -> None:
    # A value converted just before is reused (received_at and next_attempt_at are often one
    # object): rows mixing shared, equal and different datetimes must each keep their own.
    later = T0 + timedelta(seconds=5, microseconds=7)
    rows = [row("a"), {**row("b", at=later), "next_attempt_at": T0}, {**row("c"), "received_at": later},
            row("d", at=later), row("e", at=CHINA)]
    engine = make_engine(db_url)
    try:
        async with engine.connect() as conn:
            stmt = MultiRowInsertIgnore(table_of(InboxEvent), list(row("x")), "dedup_key", conn.dialect)
            assert await inserted(conn, stmt, rows) == set("abcde")
        async with engine.connect() as conn:
            stored = {r.dedup_key: (r.received_at, r.next_attempt_at)
                      for r in (await conn.execute(select(InboxEvent.__table__))).all()}
    finally:
        await engine.dispose()
    assert stored == {"a": (T0, T0), "b": (later, T0), "c": (later, T0), "d": (later, later), "e": (T0, T0)}


async def test_stamped_columns_take_the_batchs_one_value_stored_like_the_orm(db_url: str) -> None:
    # The group-commit writer's rows leave out received_at and next_attempt_at: one value a
    # batch, converted once (on SQLite down to the sqlite3 module's text) and bound in every row.
    stamped = ("received_at", "next_attempt_at")
    rows = [{k: v for k, v in row(key).items() if k not in stamped} for key in "abc"]
    later = T0 + timedelta(seconds=5, microseconds=7)
    engine = make_engine(db_url)
    try:
        async with engine.connect() as conn:
            stmt = MultiRowInsertIgnore(table_of(InboxEvent), list(rows[0]), "dedup_key", conn.dialect,
                                        stamped=stamped)
            assert stmt.fits(rows[0]) and not stmt.fits(row("x"))
            assert await inserted(conn, stmt, rows[:2], CHINA) == {"a", "b"}
            assert await inserted(conn, stmt, rows, later) == {"c"}  # 3 rows sent as 4: the last one repeated
        async with engine.connect() as conn:
            stored = {r.dedup_key: (r.received_at, r.next_attempt_at)
                      for r in (await conn.execute(select(InboxEvent.__table__))).all()}
            due = set((await conn.execute(select(InboxEvent.dedup_key).where(InboxEvent.received_at <= T0))).scalars())
    finally:
        await engine.dispose()
    assert stored == {"a": (T0, T0), "b": (T0, T0), "c": (later, later)}
    assert due == {"a", "b"}
