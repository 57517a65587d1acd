"""The migrations build exactly the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, text

from scrm.adapters.db import migrate
from scrm.adapters.db.engine import make_engine
from scrm.main import load_all_models
from tests.support.pg import scratch_database


def _diff(conn: Connection) -> list[Any]:
    ctx = MigrationContext.configure(conn, opts={"compare_type": False})
    return list(compare_metadata(ctx, load_all_models()))


async def test_models_and_migrations_agree(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        async with engine.connect() as conn:
            diff = await conn.run_sync(_diff)
    finally:
        await engine.dispose()
    assert diff == [], f"models and migrations differ; write a migration: {diff}"


async def _fresh_database(kind: str, tmp_path: Path) -> AsyncIterator[str]:
    if kind == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'old.db'}"
        return
    async with scratch_database("scrm_mig") as url:
        yield url


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
async def test_a_database_at_the_previous_head_upgrades_without_loss(kind: str, tmp_path: Path) -> None:
    """A database the previous release left at 0004 (each feature's migrations moved into
    migrations/versions/<feature>/ kept every revision id) upgrades to the instance registry and
    the inbox's priority and order key, and keeps its rows: a waiting event becomes an ordinary
    one (priority 100, no order key)."""
    async for url in _fresh_database(kind, tmp_path):
        await migrate.upgrade_async(url, "0004")
        engine = make_engine(url)
        try:
            async with engine.begin() as conn:
                await conn.execute(text("INSERT INTO member (userid, name, department, status) "
                                        "VALUES ('zhangwei', '张伟', '', 'active')"))
                await conn.execute(text(
                    "INSERT INTO inbox_event (dedup_key, source, received_at, raw, msg_type, event, change_type, "
                    "status, attempts, next_attempt_at) VALUES ('k1', 'wecom', '2026-12-01 00:00:00', '<xml/>', "
                    "'event', 'change_external_contact', 'add_external_contact', 'pending', 0, "
                    "'2026-12-01 00:00:00')"))
            await migrate.upgrade_async(url, "heads")
            assert await asyncio.to_thread(migrate.current, url) == ["console_0010 (head)"]
            async with engine.connect() as conn:
                assert (await conn.execute(text("SELECT name FROM member"))).scalars().all() == ["张伟"]
                rows = (await conn.execute(text(
                    "SELECT dedup_key, status, priority, order_key FROM inbox_event"))).all()
                assert [tuple(r) for r in rows] == [("k1", "pending", 100, "")]
                assert await conn.run_sync(_diff) == []
        finally:
            await engine.dispose()
