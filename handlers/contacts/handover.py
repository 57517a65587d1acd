"""A relation handed to another manager by succession (在职/离职继承), in the mirror.

WeCom moves the relation (remark and corp tags with it) when the transfer completes and sends
no callback for a resigned member's; the mirror follows here: the old relation ends
``transferred`` (not churn), the new one is active with the same remark, channel and tags.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.contacts.follows import (
    ACTIVE,
    ASSIGNED_ADD_WAY,
    TRANSFERRED,
    add_follow_tags,
    ensure_follow,
    get_follow,
    set_status,
)
from handlers.contacts.models import Follow
from handlers.tags.api import FollowTag


async def hand_over_follow(session: AsyncSession, external_userid: str, old: str, new: str, at: datetime,
                           reason: str) -> None:
    """Move the relation ``old`` → ``new`` at ``at`` (idempotent)."""
    before = await get_follow(session, old, external_userid)
    tags = list((await session.scalars(select(FollowTag.tag_id).where(
        FollowTag.userid == old, FollowTag.external_userid == external_userid))).all())
    await ensure_follow(session, new, external_userid, state=before.state if before else "", created_at=at)
    values: dict[str, object] = {"status": ACTIVE, "status_at": at, "status_reason": reason[:128],
                                 "add_way": ASSIGNED_ADD_WAY}
    if before is not None:
        values.update(remark=before.remark, description=before.description)
    await session.execute(update(Follow).where(Follow.userid == new, Follow.external_userid == external_userid)
                          .values(**values))
    await add_follow_tags(session, new, external_userid, tags, at)
    if before is not None and before.status == ACTIVE:
        await set_status(session, old, external_userid, TRANSFERRED, reason, at)
