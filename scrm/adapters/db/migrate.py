"""Run Alembic migrations programmatically (``scrm db upgrade``, and ``scrm serve`` on SQLite),
and tell whether a database is at the code's migration heads (``scrm db current``, ``scrm serve``
on PostgreSQL)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection

from scrm.adapters.db.engine import DatabaseNotReady, display_url, make_engine

MIGRATIONS_DIR = Path(__file__).resolve().parents[3] / "migrations"


def alembic_config(url: str) -> Config:
    if not (MIGRATIONS_DIR / "env.py").is_file():
        raise RuntimeError(f"migrations not found at {MIGRATIONS_DIR}; install the project with `pip install -e .`")
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    # One folder per feature under versions/ (kernel/, crm/, radar/, sop/ ...): a feature's
    # migrations live together, and Alembic reads them all as one history.
    cfg.set_main_option("recursive_version_locations", "true")
    cfg.set_main_option("sqlalchemy.url", url)
    return cfg


# "heads": feature areas may add migrations on parallel branches; all of them apply.
def upgrade(url: str, revision: str = "heads") -> None:
    """Blocking: Alembic's async env runs its own event loop."""
    command.upgrade(alembic_config(url), revision)


async def upgrade_async(url: str, revision: str = "heads") -> None:
    # env.py calls asyncio.run(), which cannot nest inside a running loop: use a thread.
    await asyncio.to_thread(upgrade, url, revision)


def head_revisions(url: str) -> set[str]:
    """The revisions this release's migrations end in (one per parallel branch)."""
    return set(ScriptDirectory.from_config(alembic_config(url)).get_heads())


def _applied(conn: Connection) -> set[str]:
    return set(MigrationContext.configure(conn).get_current_heads())


async def applied_revisions(url: str) -> set[str]:
    """The revisions recorded in the database; empty when nothing was ever applied."""
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(_applied)
    finally:
        await engine.dispose()


def current(url: str) -> list[str]:
    """``scrm db current``: one line per applied revision, marked when it is a head."""
    applied = asyncio.run(applied_revisions(url))
    if not applied:
        return ["no migrations applied; run `scrm db upgrade`"]
    heads = head_revisions(url)
    lines = [f"{rev} (head)" if rev in heads else rev for rev in sorted(applied)]
    if applied != heads:
        lines.append("not at the latest migration; run `scrm db upgrade`")
    return lines


async def require_head(url: str) -> None:
    """Raise DatabaseNotReady unless the database is at this release's heads.

    ``scrm serve`` on PostgreSQL runs this before listening: instances never migrate there (see
    ``scrm.serve``), so an unmigrated database would otherwise fail on the first request.
    """
    applied = await applied_revisions(url)
    script = ScriptDirectory.from_config(alembic_config(url))
    heads = set(script.get_heads())
    if applied == heads:
        return
    db = display_url(url)
    if not applied:
        raise DatabaseNotReady(f"database {db} is not migrated (no migrations applied): run `scrm db upgrade`")
    unknown = applied - {s.revision for s in script.walk_revisions()}
    if unknown:
        raise DatabaseNotReady(f"database {db} is at revision {', '.join(sorted(unknown))}, which this release "
                               "does not know (migrated by a newer release?): deploy that release")
    raise DatabaseNotReady(f"database {db} is at revision {', '.join(sorted(applied))}, this release needs "
                           f"{', '.join(sorted(heads))}: run `scrm db upgrade`")
