"""What the backfill tests share: a run's context on the test stack, the sandbox seeded with a
bank's existing data, and looks into the mirror to compare with WeCom's (the sandbox's) truth."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import select

from handlers.backfill.context import Context, PageDone
from handlers.contacts.api import Follow
from handlers.tags.api import FollowTag
from scrm.sandbox.seed import Seeded, seed_existing
from tests.support.stack import Stack

OWNER = "test-runner"


def context(s: Stack, *, page_limit: int = 100, on_page: Callable[[PageDone], Any] | None = None,
            wecom: Any = None, owner: str = OWNER) -> Context:
    """A run as the service's first start makes it, on the stack's clock, client and database."""
    rt = s.runtime
    return Context(sessions=rt.sessions, wecom=wecom or s.wecom, clock=s.clock, inbox=rt.inbox,
                   corp_id=s.settings.wecom.corp_id, owner=owner, playbook=rt.playbook.current,
                   page_limit=page_limit, on_page=on_page)


def seed(s: Stack, relations: int, **kwargs: Any) -> Seeded:
    """The bank's existing customers, in the stack's sandbox; their members into the member table
    too unless the test syncs the directory (``members`` stage) itself."""
    return seed_existing(s.state, s.clock.now().timestamp(), relations=relations, **kwargs)


def wecom_relations(s: Stack) -> dict[tuple[str, str], set[str]]:
    """Every relation of an active member in the sandbox, with its corp tag ids (WeCom's truth)."""
    return {key: set(f.tag_ids) for key, f in s.state.follows.items() if s.state.active_member(key[0])}


async def mirror_relations(s: Stack) -> dict[tuple[str, str], set[str]]:
    """Every active relation in the mirror, with its tag ids."""
    async with s.runtime.sessions() as session:
        follows = (await session.execute(select(Follow.userid, Follow.external_userid)
                                         .where(Follow.status == "active"))).all()
        tags = (await session.execute(select(FollowTag.userid, FollowTag.external_userid, FollowTag.tag_id))).all()
    out: dict[tuple[str, str], set[str]] = {(u, e): set() for u, e in follows}
    for u, e, t in tags:
        if (u, e) in out:
            out[(u, e)].add(t)
    return out


async def row_counts(s: Stack) -> dict[str, int]:
    """Rows of the mirror's tables (a resumed run must not duplicate any)."""
    from sqlalchemy import func

    from handlers.contacts.api import Customer
    from handlers.groups.api import GroupChat, GroupMember

    async with s.runtime.sessions() as session:
        return {m.__tablename__: int(await session.scalar(select(func.count()).select_from(m)) or 0)
                for m in (Customer, Follow, FollowTag, GroupChat, GroupMember)}
