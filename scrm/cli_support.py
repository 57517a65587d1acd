"""What sub-commands share: the operator-error exception, an engine (and clock) for one
command, a WeCom client, the playbook or a one-line error, and a sync's printed report.

A leaf of the engine: features' commands import it, never ``scrm.cli`` (which composes them)."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from scrm.adapters.db.engine import make_engine, make_sessionmaker
from scrm.kernel.clock import Clock, SystemClock
from scrm.kernel.config import Settings
from scrm.playbook import Playbook


class UserError(Exception):
    """Something the operator can fix; printed without a traceback."""


# The composed features' checks of their own files in sop/ (``Feature.check``), put here by
# ``scrm.cli`` so that ``scrm sop validate`` runs them without importing the features.
PLAYBOOK_CHECKS: list[Callable[[Settings, Playbook | None], Sequence[str]]] = []


@contextlib.asynccontextmanager
async def database(settings: Settings) -> AsyncIterator[tuple[AsyncEngine, async_sessionmaker[AsyncSession]]]:
    """An engine and session factory for one command, disposed afterwards."""
    engine = make_engine(settings.database.url)
    try:
        yield engine, make_sessionmaker(engine)
    finally:
        await engine.dispose()


async def latest_rows(sessions: async_sessionmaker[AsyncSession], model: Any, status: str | None,
                      limit: int) -> list[Any]:
    """The newest rows of an inbox/outbox-like table, optionally of one status."""
    async with sessions() as s:
        stmt = select(model).order_by(model.id.desc()).limit(limit)
        if status:
            stmt = stmt.where(model.status == status)
        return list((await s.scalars(stmt)).all())


@dataclass
class Env:
    """What a feature command runs with."""

    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    clock: Clock


@contextlib.asynccontextmanager
async def command_env(settings: Settings, clock: Clock | None = None) -> AsyncIterator[Env]:
    """:func:`database`, with the settings and a clock, for a feature's command."""
    async with database(settings) as (engine, sessions):
        yield Env(settings, engine, sessions, clock or SystemClock())


def load_playbook_or_fail(settings: Settings) -> Playbook:
    """The playbook as the running service takes it (a material whose text breaks the content
    rules is withheld, not a reason to refuse the command), or a UserError listing every
    ``file:line: key: message``. ``scrm sop validate`` is the strict check."""
    from scrm.playbook import PlaybookError, load_playbook

    try:
        return load_playbook(settings.playbook.sop_dir, settings.playbook.materials_dir, today=SystemClock().now(),
                             withhold_content=True)
    except PlaybookError as exc:
        raise UserError("the playbook is invalid:\n" + "\n".join(str(i) for i in exc.errors)) from None


def wecom_client(env: Env) -> Any:
    from scrm.adapters.wecom.api import WeComClient
    from scrm.adapters.wecom.token import DbTokenStore

    return WeComClient(env.settings.wecom, token_store=DbTokenStore(env.sessions, env.clock), clock=env.clock)


def print_sync_results(results: Sequence[Any], subject: str) -> int:
    width = max([len(getattr(r, subject)) for r in results] + [4])
    for r in results:
        extra = " ".join(x for x in (getattr(r, "config_id", None) or "", getattr(r, "qr_code", "") or "",
                                     r.message) if x)
        print(f"{getattr(r, subject):<{width}}  {r.action:<10} {extra}".rstrip())
    if not results:
        print("(nothing to sync)")
    return 0 if all(r.ok for r in results) else 1


def report_problems(problems: Sequence[object], where: str, *, outcome: str = "") -> int:
    """Print each problem (``file:line: key: message``) and then one summary line, all on stderr,
    the way every command reports bad input; returns the exit status for it (2).

    ``where`` names what holds them ("the referral rules", a file's path); ``outcome`` says what
    the command therefore did not do ("nothing imported")."""
    for problem in problems:
        print(problem, file=sys.stderr)
    lead = f"{outcome}: " if outcome else ""
    print(f"scrm: {lead}{len(problems)} problem(s) in {where}", file=sys.stderr)
    return 2
