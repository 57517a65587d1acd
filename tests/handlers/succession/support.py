"""What the succession tests share: a stack whose mirror knows the sandbox's relations, the
rules file, and looks at items, follows and the sandbox's transfers."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select

from handlers.contacts.api import Follow, Member
from handlers.succession.models import SuccessionItem
from tests.support.stack import Stack

RULES = """\
message: "您好，{old_manager}的工作已由我接替，我是{new_manager}。"
rules:
  - name: same-team
    pick: same_team
ops_queue: [mali]
"""


def write_rules(s: Stack, text: str = RULES) -> Path:
    path = s.settings.playbook.sop_dir / "succession.yaml"
    path.write_text(text, encoding="utf-8")
    return path


async def mirror_follows(s: Stack) -> None:
    """The sandbox's relations in the mirror (as a backfill would have left them)."""
    async with s.runtime.sessions() as session, session.begin():
        session.add_all([Follow(userid=f.userid, external_userid=f.external_userid, remark=f.remark,
                                created_at=datetime.fromtimestamp(f.createtime, UTC))
                         for f in s.state.follows.values()])


async def set_departments(s: Stack, paths: dict[str, str]) -> None:
    async with s.runtime.sessions() as session, session.begin():
        for userid, path in paths.items():
            member = await session.get(Member, userid)
            assert member is not None
            member.department = path


async def items(s: Stack) -> list[SuccessionItem]:
    async with s.runtime.sessions() as session:
        return list((await session.scalars(select(SuccessionItem).order_by(SuccessionItem.id))).all())


async def follows_of(s: Stack, userid: str) -> dict[str, str]:
    """external_userid → status of ``userid``'s relations in the mirror."""
    async with s.runtime.sessions() as session:
        rows = await session.execute(select(Follow.external_userid, Follow.status).where(Follow.userid == userid))
        return dict(rows.all())
