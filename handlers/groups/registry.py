"""The customer-group registry: ``group_chat`` and ``group_member`` kept current from events.

A member change event carries ``LastMemVer`` (the version before the change) and ``CurMemVer``.
When ``LastMemVer`` equals the stored ``member_version`` the event's member list is applied as
a delta; otherwise something was missed and the caller re-reads the group with
``groupchat/get`` and hands the result to :func:`write_full`. Writes only: the WeCom read
happens in the handler, before any write.

Join scenes are stored in groupchat/get's numbering (1 直接邀请, 2 邀请链接, 3 扫码) so that
rows written from events and from full reads mean the same; quit scenes as in the event
(0 自己退群, 1 被移出).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.groups.models import GroupChat, GroupMember
from scrm.adapters.db.engine import dialect_of, table_of, upsert
from scrm.adapters.wecom.models_groups import GroupChat as WeComGroupChat

# Event JoinScene (0 direct invite, 1 invite link, 3 QR code) → groupchat/get join_scene.
EVENT_JOIN_SCENE = {0: 1, 1: 2, 3: 3}
ACTIVE, DISMISSED = "active", "dismissed"


@dataclass
class Change:
    """What one write did to a group's membership."""

    joined: list[str] = field(default_factory=list)
    left: list[str] = field(default_factory=list)
    count_before: int = 0
    count_after: int = 0


def member_type(member_id: str) -> int:
    """1 corp member, 2 external contact (external userids start with wm/wo)."""
    return 2 if member_id.startswith(("wm", "wo")) else 1


async def get_group(session: AsyncSession, chat_id: str) -> GroupChat | None:
    # populate_existing: rows are changed with Core UPDATEs, so never trust the identity map.
    return await session.get(GroupChat, chat_id, populate_existing=True)


async def active_members(session: AsyncSession, chat_id: str) -> set[str]:
    rows = await session.scalars(select(GroupMember.member_id).where(GroupMember.chat_id == chat_id,
                                                                     GroupMember.left_at.is_(None)))
    return set(rows.all())


async def _count(session: AsyncSession, chat_id: str) -> int:
    n = await session.scalar(select(func.count()).select_from(GroupMember)
                             .where(GroupMember.chat_id == chat_id, GroupMember.left_at.is_(None)))
    return int(n or 0)


async def write_full(session: AsyncSession, chat: WeComGroupChat, group_type: str | None, now: datetime) -> Change:
    """Make the registry equal to a groupchat/get reply; returns who joined and left."""
    before = await active_members(session, chat.chat_id) if await get_group(session, chat.chat_id) else set()
    row = {"chat_id": chat.chat_id, "name": chat.name, "owner": chat.owner, "group_type": group_type,
           "created_at": datetime.fromtimestamp(chat.create_time, UTC) if chat.create_time else None,
           "member_version": chat.member_version, "member_count": len(chat.member_list), "status": ACTIVE,
           "updated_at": now}
    dialect = dialect_of(session)
    await session.execute(upsert(dialect, table_of(GroupChat), ["chat_id"],
                                 ["name", "owner", "group_type", "created_at", "member_version", "member_count",
                                  "status", "updated_at"]), row)
    listed = {m.userid for m in chat.member_list}
    joined = [m for m in chat.member_list if m.userid not in before]
    if joined:
        rows = [{"chat_id": chat.chat_id, "member_id": m.userid, "type": m.type, "join_scene": m.join_scene or None,
                 "joined_at": datetime.fromtimestamp(m.join_time, UTC) if m.join_time else now, "left_at": None,
                 "quit_scene": None} for m in joined]
        await session.execute(upsert(dialect, table_of(GroupMember), ["chat_id", "member_id"],
                                     ["type", "join_scene", "joined_at", "left_at", "quit_scene"]), rows)
    left = sorted(before - listed)
    if left:
        await session.execute(update(GroupMember).where(GroupMember.chat_id == chat.chat_id,
                                                        GroupMember.member_id.in_(left))
                              .values(left_at=now))
    return Change([m.userid for m in joined], left, len(before), len(chat.member_list))


async def apply_delta(session: AsyncSession, group: GroupChat, detail: str, ids: Sequence[str], *,
                      join_scene: int | None, quit_scene: int | None, cur_version: str, at: datetime) -> Change:
    """Apply one add_member / del_member event whose LastMemVer matched ``group.member_version``."""
    before = await active_members(session, group.chat_id)
    dialect = dialect_of(session)
    change = Change(count_before=len(before))
    if detail == "add_member":
        scene = EVENT_JOIN_SCENE.get(join_scene) if join_scene is not None else None
        new = [i for i in dict.fromkeys(ids) if i not in before]
        if new:
            rows = [{"chat_id": group.chat_id, "member_id": i, "type": member_type(i), "join_scene": scene,
                     "joined_at": at, "left_at": None, "quit_scene": None} for i in new]
            await session.execute(upsert(dialect, table_of(GroupMember), ["chat_id", "member_id"],
                                         ["type", "join_scene", "joined_at", "left_at", "quit_scene"]), rows)
        change.joined = new
    else:
        gone = [i for i in dict.fromkeys(ids) if i in before]
        if gone:
            await session.execute(update(GroupMember).where(GroupMember.chat_id == group.chat_id,
                                                            GroupMember.member_id.in_(gone))
                                  .values(left_at=at, quit_scene=quit_scene))
        change.left = gone
    change.count_after = await _count(session, group.chat_id)
    await session.execute(update(GroupChat).where(GroupChat.chat_id == group.chat_id)
                          .values(member_version=cur_version, member_count=change.count_after, updated_at=at))
    return change


async def set_quit_scene(session: AsyncSession, chat_id: str, ids: Sequence[str], quit_scene: int | None) -> None:
    """Record how members left when a full re-read (which cannot know) removed them."""
    if ids and quit_scene is not None:
        await session.execute(update(GroupMember).where(GroupMember.chat_id == chat_id,
                                                        GroupMember.member_id.in_(list(ids)))
                              .values(quit_scene=quit_scene))


async def set_join_scene(session: AsyncSession, chat_id: str, ids: Sequence[str], join_scene: int | None) -> None:
    """Keep the event's join scene when groupchat/get reported none."""
    scene = EVENT_JOIN_SCENE.get(join_scene) if join_scene is not None else None
    if ids and scene is not None:
        await session.execute(update(GroupMember).where(GroupMember.chat_id == chat_id,
                                                        GroupMember.member_id.in_(list(ids)),
                                                        GroupMember.join_scene.is_(None))
                              .values(join_scene=scene))


async def dismiss(session: AsyncSession, chat_id: str, at: datetime) -> GroupChat | None:
    """Mark a group dismissed and every member gone; returns the row (None if never seen)."""
    group = await get_group(session, chat_id)
    if group is None:
        return None
    await session.execute(update(GroupChat).where(GroupChat.chat_id == chat_id)
                          .values(status=DISMISSED, member_count=0, updated_at=at))
    await session.execute(update(GroupMember).where(GroupMember.chat_id == chat_id, GroupMember.left_at.is_(None))
                          .values(left_at=at))
    return group
