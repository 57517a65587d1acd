"""Lifecycle sub-commands: ``scrm channels sync|list`` and ``scrm groups list|show|pools ...``.

``sync`` commands talk to WeCom directly (they need config ids and QR codes back) and print
one line per channel or group type; they exit 1 when any line is an error, after doing
everything else they could.
"""

from __future__ import annotations

import argparse
import contextlib
import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from scrm.clock import Clock, SystemClock
from scrm.config import Settings
from scrm.db.engine import make_engine, make_sessionmaker
from scrm.db.models import GroupChat, GroupMember, GroupPool
from scrm.sop import Playbook


@dataclass
class Env:
    """What a lifecycle command runs with."""

    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    clock: Clock


@contextlib.asynccontextmanager
async def _env(settings: Settings, clock: Clock | None = None) -> AsyncIterator[Env]:
    engine = make_engine(settings.database.url)
    try:
        yield Env(settings, engine, make_sessionmaker(engine), clock or SystemClock())
    finally:
        await engine.dispose()


def load_playbook_or_fail(settings: Settings) -> Playbook:
    """The playbook, or a UserError listing every ``file:line: key: message``."""
    from scrm.cli import UserError
    from scrm.sop import PlaybookError, load_playbook

    try:
        return load_playbook(settings.playbook.sop_dir, settings.playbook.materials_dir, today=SystemClock().now())
    except PlaybookError as exc:
        raise UserError("the playbook is invalid:\n" + "\n".join(str(i) for i in exc.errors)) from None


def _client(env: Env) -> Any:
    from scrm.wecom.api import WeComClient
    from scrm.wecom.token import DbTokenStore

    return WeComClient(env.settings.wecom, token_store=DbTokenStore(env.sessions, env.clock), clock=env.clock)


def _print_results(results: Sequence[Any], subject: str) -> int:
    width = max([len(getattr(r, subject)) for r in results] + [4])
    for r in results:
        extra = " ".join(x for x in (getattr(r, "config_id", None) or "", getattr(r, "qr_code", "") or "",
                                     r.message) if x)
        print(f"{getattr(r, subject):<{width}}  {r.action:<10} {extra}".rstrip())
    if not results:
        print("(nothing to sync)")
    return 0 if all(r.ok for r in results) else 1


# ------------------------------------------------------------------------------ channels


async def cmd_channels(args: argparse.Namespace, settings: Settings, *, clock: Clock | None = None) -> int:
    from scrm.cli import UserError
    from scrm.lifecycle.channels import list_channels, sync_channels

    async with _env(settings, clock) as env:
        if args.channels_command == "sync":
            book = load_playbook_or_fail(settings)
            wecom = _client(env)
            try:
                results = await sync_channels(env.sessions, wecom, book, env.clock, settings.playbook.materials_dir)
            finally:
                await wecom.close()
            return _print_results(results, "key")
        playbook: Playbook | None
        try:
            playbook = load_playbook_or_fail(settings)
        except UserError:
            playbook = None  # listing what the database holds still helps while the YAML is broken
        async with env.sessions() as session:
            rows = await list_channels(session, playbook)
        print(f"{'key':<30} {'name':<16} {'status':<12} {'added':>5} {'lost':>5}  qr_code")
        for row in rows:
            print(f"{row.key:<30} {row.name:<16} {row.status:<12} {row.added:>5} {row.churned:>5}  {row.qr_code}")
        if not rows:
            print("(no channels)")
        return 0


# ------------------------------------------------------------------------------ groups


async def cmd_groups(args: argparse.Namespace, settings: Settings, *, clock: Clock | None = None) -> int:
    from scrm.cli import UserError

    async with _env(settings, clock) as env:
        if args.groups_command == "list":
            return await _groups_list(env, args)
        if args.groups_command == "show":
            async with env.sessions() as session:
                group = await session.get(GroupChat, args.chat_id)
                if group is None:
                    raise UserError(f"no group {args.chat_id} (run `scrm groups pools sync` to refresh)")
                members = (await session.scalars(select(GroupMember).where(GroupMember.chat_id == args.chat_id)
                                                 .order_by(GroupMember.joined_at))).all()
                pools = [p.group_type for p in (await session.scalars(select(GroupPool))).all()
                         if args.chat_id in p.chat_ids]
            print(json.dumps(_group_detail(group, members, pools), ensure_ascii=False, indent=2, default=str))
            return 0
        if args.pools_command == "list":
            return await _pools_list(env)
        return await _pools_sync(env)


async def _groups_list(env: Env, args: argparse.Namespace) -> int:
    stmt = select(GroupChat).order_by(GroupChat.group_type, GroupChat.created_at)
    if args.type:
        stmt = stmt.where(GroupChat.group_type == args.type)
    if not args.all:
        stmt = stmt.where(GroupChat.status == "active")
    async with env.sessions() as session:
        groups = (await session.scalars(stmt)).all()
    print(f"{'chat_id':<24} {'type':<14} {'members':>7}  {'owner':<12} {'status':<9} name")
    for g in groups:
        print(f"{g.chat_id:<24} {g.group_type or '-':<14} {g.member_count:>7}  {g.owner:<12} {g.status:<9} {g.name}")
    if not groups:
        print("(no groups)")
    return 0


def _group_detail(group: GroupChat, members: Sequence[GroupMember], pools: list[str]) -> dict[str, Any]:
    return {
        "chat_id": group.chat_id, "name": group.name, "owner": group.owner, "type": group.group_type,
        "status": group.status, "created_at": group.created_at, "member_count": group.member_count,
        "member_version": group.member_version, "in_pools": pools,
        "members": [{"id": m.member_id, "type": "member" if m.type == 1 else "customer", "join_scene": m.join_scene,
                     "joined_at": m.joined_at, "left_at": m.left_at, "quit_scene": m.quit_scene} for m in members],
    }


async def _pools_list(env: Env) -> int:
    async with env.sessions() as session:
        rows = (await session.scalars(select(GroupPool).order_by(GroupPool.group_type))).all()
    for p in rows:
        room = "NEEDS A NEW GROUP" if p.needs_room else ""
        print(f"{p.group_type:<16} {p.config_id or '-':<24} {','.join(p.chat_ids):<60} {p.qr_code} {room}".rstrip())
    if not rows:
        print("(no pools; run `scrm groups pools sync`)")
    return 0


async def _pools_sync(env: Env) -> int:
    from scrm.inbox import Inbox
    from scrm.lifecycle.groupsync import sync_all
    from scrm.radar.links import LinkMaker
    from scrm.scheduler import Scheduler

    playbook = load_playbook_or_fail(env.settings)
    inbox = Inbox(env.engine, env.sessions, env.settings.inbox, env.clock)
    scheduler = Scheduler(env.engine, env.sessions, env.settings.scheduler, env.clock, inbox)
    wecom = _client(env)
    try:
        results = await sync_all(env.sessions, wecom, playbook, env.clock, env.settings.playbook.materials_dir,
                                 scheduler, LinkMaker(env.settings))
    finally:
        await wecom.close()
    return _print_results(results, "subject")


# ------------------------------------------------------------------------------ parser


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    c = sub.add_parser("channels", help="contact QR channels (sop/channels.yaml)")
    csub = c.add_subparsers(dest="channels_command", required=True)
    csub.add_parser("sync", help="create missing tags and create/update every channel's contact way in WeCom")
    csub.add_parser("list", help="channels with their QR codes, added and lost customers")
    c.set_defaults(func=cmd_channels)

    g = sub.add_parser("groups", help="customer groups, group types and QR pools (sop/groups.yaml)")
    gsub = g.add_subparsers(dest="groups_command", required=True)
    gl = gsub.add_parser("list", help="registered groups")
    gl.add_argument("--type", help="only groups of this group type")
    gl.add_argument("--all", action="store_true", help="include dismissed groups")
    gs = gsub.add_parser("show", help="one group with its members")
    gs.add_argument("chat_id")
    gp = gsub.add_parser("pools", help="group QR pools (加入群聊)")
    psub = gp.add_subparsers(dest="pools_command", required=True)
    psub.add_parser("sync", help="refresh groups from WeCom, then create/update each type's pool and welcome")
    psub.add_parser("list", help="pools with their chats and QR codes")
    g.set_defaults(func=cmd_groups)
