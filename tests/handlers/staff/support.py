"""What the staff tests share: parsed CLI arguments and a look at the member table."""

from __future__ import annotations

import argparse

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.contacts.api import Member
from scrm.cli import _register_extras, build_parser

Row = tuple[str, str, str | None, str]  # name, department, team_lead, status


def args(*argv: str) -> argparse.Namespace:
    _register_extras()
    return build_parser().parse_args(list(argv))


async def members(sessions: async_sessionmaker[AsyncSession]) -> dict[str, Row]:
    async with sessions() as s:
        rows = (await s.scalars(select(Member))).all()
        return {m.userid: (m.name, m.department, m.team_lead, m.status) for m in rows}
