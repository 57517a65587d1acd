"""PostgreSQL connections are pinged at checkout only after sitting idle (``ping_when_idle``):
a connection whose server process died while it idled is replaced without the caller seeing an
error; one given back a moment ago is not pinged (so its death shows once, and the pool recovers)."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from scrm.adapters.db.engine import make_engine, ping_when_idle


async def _backend_pid(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one())


async def _kill(url: str, pid: int) -> None:
    other = make_engine(url)
    try:
        async with other.connect() as conn:
            assert (await conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})).scalar_one()
    finally:
        await other.dispose()


def _engine(url: str, after_s: float) -> AsyncEngine:
    engine = create_async_engine(url, pool_size=1, max_overflow=0)
    ping_when_idle(engine, after_s)
    return engine


@pytest.fixture
def pg_url(db_url: str) -> str:
    if not db_url.startswith("postgresql"):
        pytest.skip("about PostgreSQL connections")
    return db_url


async def test_a_connection_that_died_while_idle_is_replaced_unseen(pg_url: str) -> None:
    engine = _engine(pg_url, after_s=0.0)  # every checkout counts as idle: always pinged
    try:
        first = await _backend_pid(engine)
        await _kill(pg_url, first)
        assert await _backend_pid(engine) != first  # no error: the ping found it dead, the pool reconnected
    finally:
        await engine.dispose()


async def test_a_connection_given_back_a_moment_ago_is_not_pinged(pg_url: str) -> None:
    engine = _engine(pg_url, after_s=3600.0)
    try:
        first = await _backend_pid(engine)
        await _kill(pg_url, first)
        with pytest.raises(DBAPIError):  # not pinged: its death shows at its first statement
            await _backend_pid(engine)
        assert await _backend_pid(engine) != first  # and the pool has replaced it
    finally:
        await engine.dispose()
