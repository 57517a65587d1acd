"""The console's audit log: who did what, when, from where. Written in the same transaction as
the action where there is one, so an action is never done unrecorded."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from aiohttp import web
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.console.models import ConsoleAudit


def remote_of(request: web.Request) -> str:
    return (request.remote or "")[:64]


def record(db: AsyncSession, at: datetime, actor: str, role: str, action: str, target: str = "",
           remote: str = "", **detail: Any) -> None:
    """Add one audit row to ``db``'s transaction."""
    db.add(ConsoleAudit(at=at, actor=actor[:64], role=role[:32], action=action[:64], target=target,
                        detail=detail, remote=remote[:64]))


async def recent_failures(db: AsyncSession, actor: str, since: datetime) -> int:
    """Refused sign-ins of ``actor`` since ``since`` (the local admin's lock-out counts them)."""
    return int(await db.scalar(select(func.count()).select_from(ConsoleAudit).where(
        ConsoleAudit.actor == actor, ConsoleAudit.action == "signin_refused", ConsoleAudit.at >= since)) or 0)


async def latest(db: AsyncSession, *, limit: int = 200, actor: str = "") -> list[ConsoleAudit]:
    q = select(ConsoleAudit).order_by(ConsoleAudit.id.desc()).limit(limit)
    if actor:
        q = q.where(ConsoleAudit.actor == actor)
    return list((await db.scalars(q)).all())


LOCKOUT_FAILURES = 5
LOCKOUT_WINDOW = timedelta(minutes=15)
