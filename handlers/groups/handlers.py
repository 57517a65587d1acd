"""Customer groups: keep the registry and its members current, classify groups into the
playbook's group types, keep each type's QR pool pointing at groups with room, and give owners
their tasks (event-group joiners, groups over their cap, event groups at the end of their life).

Member changes apply as deltas when the event's LastMemVer matches the stored member version;
anything else (a missed event, a replay, a rename, an owner change) re-reads the group with
groupchat/get — before the first write, like every WeCom read here.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.contacts.api import customer_names
from handlers.groups import lifetime, pools, registry, texts
from handlers.groups.events import GroupLifetimeDue
from scrm.adapters.wecom import events as ev
from scrm.adapters.wecom.api import WeComClient
from scrm.adapters.wecom.errors import ErrCode, WeComError
from scrm.adapters.wecom.models_groups import GroupChat
from scrm.kernel.clock import Clock
from scrm.kernel.config import Settings
from scrm.kernel.dispatch import Router
from scrm.kernel.notify import tell_member
from scrm.kernel.outbox import Outbox
from scrm.kernel.scheduler import Scheduler
from scrm.playbook import Playbook
from scrm.playbook.quiet import quiet_until

router = Router("groups")
log = logging.getLogger("handlers.groups")

MEMBER_CHANGES = ("add_member", "del_member")


@dataclass(frozen=True)
class Ctx:
    """What the follow-up rules need about one change."""

    session: AsyncSession
    outbox: Outbox
    settings: Settings
    playbook: Playbook
    key: str  # unique per triggering event: makes every follow-up idempotent
    now: datetime


def _at(event: ev.BaseEvent) -> datetime:
    return datetime.fromtimestamp(event.create_time, UTC)


async def _read_group(wecom: WeComClient, chat_id: str) -> GroupChat | None:
    """groupchat/get; None when WeCom no longer knows the chat (dismissed meanwhile)."""
    try:
        return (await wecom.get_group_chat(chat_id)).group_chat
    except WeComError as exc:
        if exc.errcode in (ErrCode.INVALID_PARAMETER, ErrCode.NOT_EXTERNAL_GROUP_CHAT):
            log.warning("group unknown to WeCom; a dismiss event should follow", extra={"chat_id": chat_id})
            return None
        raise


def _classify(playbook: Playbook, chat: GroupChat) -> str | None:
    return playbook.classify_group(chat.name, chat.owner, chat.chat_id)


@router.on(ev.ExternalChatCreate)
async def on_create(event: ev.ExternalChatCreate, session: AsyncSession, wecom: WeComClient, outbox: Outbox,
                    scheduler: Scheduler, playbook: Playbook, settings: Settings, clock: Clock,
                    inbox_id: int) -> None:
    """A new group: register it, classify it, arm its lifetime reminder, offer it to the pool."""
    chat = await _read_group(wecom, event.chat_id)
    if chat is None:
        return
    old = await registry.get_group(session, chat.chat_id)
    old_type = old.group_type if old else None
    group_type = _classify(playbook, chat)
    change = await registry.write_full(session, chat, group_type, clock.now())
    ctx = Ctx(session, outbox, settings, playbook, f"{chat.chat_id}:{inbox_id}", clock.now())
    await _lifetime(ctx, scheduler, chat, group_type, old_type)
    await _follow_up(ctx, chat.chat_id, chat.name, chat.owner, group_type, change, announce_joins=False)
    if old_type and old_type != group_type:
        await _rebalance(ctx, old_type, chat.owner)


@router.on(ev.ExternalChatUpdate)
async def on_update(event: ev.ExternalChatUpdate, session: AsyncSession, wecom: WeComClient, outbox: Outbox,
                    scheduler: Scheduler, playbook: Playbook, settings: Settings, clock: Clock,
                    inbox_id: int) -> None:
    """Joins and quits as deltas when versions match; any other change re-reads the group."""
    group = await registry.get_group(session, event.chat_id)
    ctx = Ctx(session, outbox, settings, playbook, f"{event.chat_id}:{inbox_id}", clock.now())
    members = event.update_detail in MEMBER_CHANGES
    if (members and group is not None and group.status == registry.ACTIVE and event.last_mem_ver
            and group.member_version == event.last_mem_ver):
        change = await registry.apply_delta(session, group, event.update_detail, event.mem_change_list,
                                            join_scene=event.join_scene, quit_scene=event.quit_scene,
                                            cur_version=event.cur_mem_ver, at=_at(event))
        await _follow_up(ctx, group.chat_id, group.name, group.owner, group.group_type, change)
        return
    chat = await _read_group(wecom, event.chat_id)
    if chat is None:
        return
    old_type = group.group_type if group else None
    group_type = _classify(playbook, chat)
    change = await registry.write_full(session, chat, group_type, clock.now())
    if members:
        log.info("member versions differ; group re-read", extra={"chat_id": chat.chat_id, "event_last":
                                                                 event.last_mem_ver})
        # groupchat/get knows neither why members left nor (always) how they came.
        await registry.set_quit_scene(session, chat.chat_id, [m for m in change.left if m in event.mem_change_list],
                                      event.quit_scene if event.update_detail == "del_member" else None)
        await registry.set_join_scene(session, chat.chat_id,
                                      [m for m in change.joined if m in event.mem_change_list],
                                      event.join_scene if event.update_detail == "add_member" else None)
    await _lifetime(ctx, scheduler, chat, group_type, old_type)
    await _follow_up(ctx, chat.chat_id, chat.name, chat.owner, group_type, change)
    if old_type and old_type != group_type:
        await _rebalance(ctx, old_type, chat.owner)


@router.on(ev.ExternalChatDismiss)
async def on_dismiss(event: ev.ExternalChatDismiss, session: AsyncSession, outbox: Outbox,
                     playbook: Playbook, settings: Settings, clock: Clock, inbox_id: int) -> None:
    """Mark the group dismissed (members gone) and take it out of its pool."""
    group = await registry.dismiss(session, event.chat_id, _at(event))
    if group is not None and group.group_type:
        ctx = Ctx(session, outbox, settings, playbook, f"{event.chat_id}:{inbox_id}", clock.now())
        await _rebalance(ctx, group.group_type, group.owner)


@router.on(GroupLifetimeDue)
async def on_lifetime_due(event: GroupLifetimeDue, session: AsyncSession, outbox: Outbox, playbook: Playbook,
                          settings: Settings, clock: Clock) -> None:
    """An event group (活动快闪群) reached its lifetime: remind the owner, if the group is still open."""
    chat_id = event.chat_id
    group = await registry.get_group(session, chat_id)
    spec = playbook.group_types.get(group.group_type or "") if group else None
    if group is None or group.status != registry.ACTIVE or spec is None or not spec.lifetime_days:
        log.info("lifetime reminder not needed", extra={"chat_id": chat_id})
        return
    await tell_member(session, outbox, settings, key=f"group_lifetime:{chat_id}", userid=group.owner,
                      text=texts.flash_group_expired(group.name, spec.lifetime_days),
                      not_before=quiet_until(playbook, clock.now()))


# ------------------------------------------------------------------------------ follow-ups


async def _lifetime(ctx: Ctx, scheduler: Scheduler, chat: GroupChat, group_type: str | None,
                    old_type: str | None) -> None:
    """Arm the lifetime reminder when a group becomes a type with a lifetime."""
    spec = ctx.playbook.group_types.get(group_type) if group_type else None
    if spec is None or not spec.lifetime_days or group_type == old_type or not chat.create_time:
        return
    await lifetime.schedule(ctx.session, scheduler, chat.chat_id, datetime.fromtimestamp(chat.create_time, UTC),
                            spec.lifetime_days)


async def _follow_up(ctx: Ctx, chat_id: str, name: str, owner: str, group_type: str | None,
                     change: registry.Change, *, announce_joins: bool = True) -> None:
    """Owner tasks and pool rotation after a membership change of a classified group."""
    spec = ctx.playbook.group_types.get(group_type) if group_type else None
    if spec is None or group_type is None:
        return
    customers = [m for m in change.joined if registry.member_type(m) == 2]
    if announce_joins and spec.lifetime_days and customers and owner:
        known = await customer_names(ctx.session, customers)
        text = texts.flash_group_joined(name, [known[c] for c in customers if c in known], len(customers) - len(known))
        await tell_member(ctx.session, ctx.outbox, ctx.settings, key=f"flash_join:{ctx.key}", userid=owner, text=text,
                          not_before=quiet_until(ctx.playbook, ctx.now))
    cap = spec.member_cap
    if change.count_before <= cap < change.count_after and owner:
        await tell_member(ctx.session, ctx.outbox, ctx.settings, key=f"over_cap:{ctx.key}", userid=owner,
                          text=texts.group_over_cap(name, spec.name, change.count_after, cap),
                          not_before=quiet_until(ctx.playbook, ctx.now))
    await _rebalance(ctx, group_type, owner)


async def _rebalance(ctx: Ctx, group_type: str, owner: str) -> None:
    await pools.rebalance(ctx.session, ctx.outbox, ctx.settings, ctx.playbook, group_type, key=ctx.key,
                          now=ctx.now, owner=owner or None)
