"""Database helpers the seeding benches share: which backend a URL is, and fast bulk loads on PostgreSQL.

Seeding a million customers through SQLAlchemy's executemany takes a long while on PostgreSQL;
``COPY`` (asyncpg's ``copy_records_to_table``, reached through SQLAlchemy's raw connection, so
the URL and driver are the service's own) loads the same rows in about a minute or two.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import AsyncConnection

KEEP = ("alembic_version",)  # the schema's own bookkeeping: never emptied


def is_postgres(url: str) -> bool:
    return make_url(url).get_backend_name() == "postgresql"


def bench_postgres_url(default_db: str = "scrm_bench") -> str:
    """``$SCRM_BENCH_PG`` or the local bench database (for help texts and examples)."""
    return os.environ.get("SCRM_BENCH_PG", f"postgresql+asyncpg://postgres@127.0.0.1:5432/{default_db}")


@asynccontextmanager
async def raw_asyncpg(conn: AsyncConnection) -> AsyncIterator[Any]:
    """The asyncpg connection under a SQLAlchemy AsyncConnection (for COPY)."""
    fairy = await conn.get_raw_connection()
    driver = fairy.driver_connection
    if driver is None:
        raise RuntimeError("no driver connection")
    yield driver


async def truncate_all(conn: AsyncConnection) -> list[str]:
    """Empty every table of the current schema but Alembic's (a fresh, migrated database, fast)."""
    rows = await conn.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"))
    tables = [t for (t,) in rows.all() if t not in KEEP]
    if tables:
        await conn.execute(text("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " RESTART IDENTITY CASCADE"))
    return tables


async def copy_rows(conn: AsyncConnection, table: str, columns: Sequence[str],
                    records: Iterable[Sequence[Any]]) -> None:
    """``COPY table (columns) FROM STDIN`` with these rows (Python values: datetimes, bools, JSON as str)."""
    async with raw_asyncpg(conn) as pg:
        await pg.copy_records_to_table(table, columns=list(columns), records=records)


async def analyze(conn: AsyncConnection, tables: Sequence[str]) -> None:
    """Fresh planner statistics after a bulk load, as autovacuum would give a long-lived database."""
    for t in tables:
        await conn.execute(text(f'ANALYZE "{t}"'))


async def database_comment(url: str) -> str | None:
    """The database's ``COMMENT ON DATABASE``: where a generated data set says what it holds, so
    ``--reuse`` can tell it (no table added to the project's schema)."""
    from scrm.adapters.db.engine import make_engine

    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            comment = await conn.scalar(text("SELECT shobj_description(oid, 'pg_database') FROM pg_database "
                                             "WHERE datname = current_database()"))
    finally:
        await engine.dispose()
    return None if comment is None else str(comment)


async def fresh_database(db: str | None, tmp: Path) -> str:
    """A migrated, empty database: a new SQLite file in ``tmp``, or ``db`` migrated and emptied."""
    from scrm.adapters.db import migrate
    from scrm.adapters.db.engine import make_engine

    url = db or f"sqlite+aiosqlite:///{tmp / 'bench.db'}"
    await asyncio.to_thread(migrate.upgrade, url)
    if db:
        engine = make_engine(url)
        try:
            async with engine.begin() as conn:
                await truncate_all(conn)
        finally:
            await engine.dispose()
    return url
