"""The group-commit writer on a real database: each caller learns whether its row was new, and
every row it acknowledged is stored (a batch of new keys, and one holding duplicates, both within
the batch and of stored rows)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from sqlalchemy import select

from scrm.adapters.db.engine import make_engine, table_of
from scrm.kernel.group_commit import GroupCommitWriter
from scrm.kernel.inbox import Inbox
from scrm.kernel.models import InboxEvent

T0 = datetime(2026, 12, 7, 21, 0, tzinfo=UTC)


def row(key: str) -> dict[str, object]:
    return Inbox._row("wecom", key, f"<xml>{key}</xml>", "event", "e", "")


async def test_callers_learn_which_rows_were_new_and_every_row_is_stored(db_url: str) -> None:
    engine = make_engine(db_url)
    writer = GroupCommitWriter(
        engine,
        table_of(InboxEvent),
        "dedup_key",
        max_delay_s=0.05,
        stamp=lambda: T0,
        stamped=("received_at", "next_attempt_at"),
    )
    writer.start()
    try:
        first = await asyncio.gather(*[writer.submit(row(k)) for k in "abc"])
        second = await asyncio.gather(*[writer.submit(row(k)) for k in "dbde"])  # "b" stored, "d" twice
        third = await asyncio.gather(*[writer.submit(row(k)) for k in "fg"])
    finally:
        await writer.stop()
    async with engine.connect() as conn:
        stored = sorted((await conn.execute(select(InboxEvent.dedup_key))).scalars())
    await engine.dispose()
    assert first == [True, True, True]
    assert second == [True, False, False, True]
    assert third == [True, True]
    assert stored == list("abcdefg")
