"""A PostgreSQL database of a test's own: created empty, dropped (forced) afterwards."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from sqlalchemy import text

from scrm.adapters.db.engine import make_engine
from tests.conftest import PG_ADMIN_URL


@asynccontextmanager
async def scratch_database(prefix: str) -> AsyncIterator[str]:
    """The URL of a new, empty database ``<prefix>_<random>``; the test is skipped, loudly, when
    PostgreSQL does not answer within 5 s (as the suite's own PostgreSQL cases are)."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = make_engine(PG_ADMIN_URL)
    try:
        async with asyncio.timeout(5), admin.connect() as conn:
            auto = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await auto.execute(text(f'CREATE DATABASE "{name}"'))
    except (OSError, TimeoutError) as exc:
        await admin.dispose()
        pytest.skip(f"PostgreSQL NOT TESTED: not reachable at {PG_ADMIN_URL}: {type(exc).__name__}: {exc}")
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        async with admin.connect() as conn:
            auto = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await auto.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()
