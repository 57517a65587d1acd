"""Alembic environment (async), reusing the app's engine factory and SQLite pragmas.

On SQLite, batch migrations recreate tables; with foreign keys on that silently deletes child
rows (measured), so migrations run with foreign keys OFF and ``PRAGMA foreign_key_check`` after.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import Connection, text

from scrm.adapters.db.engine import make_engine
from scrm.main import load_all_models

config = context.config
target_metadata = load_all_models()


def _run(connection: Connection) -> None:
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
    context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=sqlite,
                      compare_type=True)
    with context.begin_transaction():
        context.run_migrations()
    if sqlite:
        problems = connection.execute(text("PRAGMA foreign_key_check")).fetchall()
        if problems:
            raise RuntimeError(f"foreign key check failed after migration: {problems[:5]}")
        connection.exec_driver_sql("PRAGMA foreign_keys=ON")


async def _online() -> None:
    url = config.get_main_option("sqlalchemy.url")
    assert url, "scrm.adapters.db.migrate sets sqlalchemy.url"
    engine = make_engine(url)
    async with engine.connect() as conn:
        await conn.run_sync(_run)
        await conn.commit()
    await engine.dispose()


if context.is_offline_mode():
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata,
                      literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(_online())
