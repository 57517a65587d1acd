"""Group QR pools (「加入群聊」): per group type, one join way over ≤5 groups that still have room.

WeCom's join way lists at most five chats. We keep it pointing at groups of the type below
their member cap: when a group reaches its cap it is rotated out and, when no group with room
is left, the owner is asked to open a new one; a new group of the type joins the pool. The
pool is created by ``scrm groups pools sync`` (which needs the config_id WeCom returns); at
event time only ``update_join_way`` goes out, through the outbox, in one lane per pool so
updates arrive in order (each is a full overwrite, so the last one wins).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.groups import texts
from handlers.groups.models import GroupChat, GroupPool
from scrm.adapters.wecom.models_groups import JoinWay
from scrm.kernel.config import Settings
from scrm.kernel.notify import tell_member
from scrm.kernel.outbox import Outbox
from scrm.playbook import GroupType, Playbook
from scrm.playbook.quiet import quiet_until

UPDATE_JOIN_WAY = "externalcontact/groupchat/update_join_way"
_STATE_CHARS = re.compile(r"[^A-Za-z0-9_-]")


@dataclass(frozen=True)
class Candidate:
    """A group of the pool's type, as the registry knows it."""

    chat_id: str
    member_count: int
    created_at: datetime | None = None


@dataclass(frozen=True)
class PoolPlan:
    """The chats the join way should list; ``needs_room`` when no group has room left."""

    chat_ids: list[str]
    needs_room: bool
    changed: bool


def plan_pool(current: Sequence[str], candidates: Sequence[Candidate], *, size: int, cap: int) -> PoolPlan:
    """Which chats the pool should list (pure).

    Chats already listed that still have room stay, in their order (the QR code keeps sending
    people to the same group while it fills); free slots go to the oldest other groups with
    room. WeCom needs at least one chat, so when none has room the list is left as it is and
    ``needs_room`` is set.
    """
    with_room = {c.chat_id: c for c in candidates if c.member_count < cap}
    keep = [c for c in dict.fromkeys(current) if c in with_room]
    oldest = datetime.min.replace(tzinfo=UTC)
    rest = sorted((c for c in with_room.values() if c.chat_id not in keep),
                  key=lambda c: (c.created_at or oldest, c.chat_id))
    chosen = [*keep, *(c.chat_id for c in rest)][:size]
    if not chosen:
        return PoolPlan(list(current), needs_room=True, changed=False)
    return PoolPlan(chosen, needs_room=False, changed=chosen != list(current))


def pool_state(type_key: str) -> str:
    """The join way's ``state`` (≤30 chars; comes back on members who joined through it)."""
    return _STATE_CHARS.sub("-", f"grp-{type_key}")[:30]


def join_way(type_key: str, group_type: GroupType, chat_ids: Sequence[str], config_id: str | None = None) -> JoinWay:
    """The add/update_join_way body of a pool (update is a full overwrite)."""
    pool = group_type.qr_pool
    if pool is None:
        raise ValueError(f"group type {type_key!r} has no qr_pool")
    return JoinWay(config_id=config_id, scene=2, remark=group_type.name[:30],
                   auto_create_room=1 if pool.auto_create_room else 0, room_base_name=pool.room_base_name,
                   room_base_id=pool.room_base_id, chat_id_list=list(chat_ids), state=pool_state(type_key))


async def candidates(session: AsyncSession, type_key: str) -> list[Candidate]:
    rows = await session.execute(select(GroupChat.chat_id, GroupChat.member_count, GroupChat.created_at)
                                 .where(GroupChat.group_type == type_key, GroupChat.status == "active"))
    return [Candidate(chat_id, count, created) for chat_id, count, created in rows.all()]


async def rebalance(session: AsyncSession, outbox: Outbox, settings: Settings, playbook: Playbook,
                    type_key: str, *, key: str, now: datetime, owner: str | None) -> PoolPlan | None:
    """Re-plan the pool of ``type_key`` after a registry change (event time).

    Queues update_join_way when the list changed; asks ``owner`` for a new group the first
    time the pool runs out of room. ``key`` makes both idempotent per triggering event.
    Returns None when the type has no pool or the pool was never synced to WeCom.
    """
    group_type = playbook.group_types.get(type_key)
    if group_type is None or group_type.qr_pool is None:
        return None
    row = await session.get(GroupPool, type_key, populate_existing=True)
    if row is None or not row.config_id:
        return None  # created by `scrm groups pools sync`, which needs WeCom's config_id back
    plan = plan_pool(row.chat_ids, await candidates(session, type_key), size=group_type.qr_pool.size,
                     cap=group_type.member_cap)
    if plan.changed:
        body: dict[str, Any] = join_way(type_key, group_type, plan.chat_ids, row.config_id).to_body()
        await outbox.add(session, f"pool:{type_key}:{key}", UPDATE_JOIN_WAY, body, lane=f"pool:{type_key}")
        row.chat_ids = list(plan.chat_ids)
        row.updated_at = now
    if plan.needs_room and not row.needs_room and owner:
        await tell_member(session, outbox, settings, key=f"pool_needs_group:{type_key}:{key}", userid=owner,
                          text=texts.pool_needs_group(group_type.name, group_type.member_cap),
                          not_before=quiet_until(playbook, now))
    if plan.needs_room != row.needs_room:
        row.needs_room = plan.needs_room
        row.updated_at = now
    return plan
