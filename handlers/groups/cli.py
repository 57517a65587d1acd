"""``scrm groups list|show|pools sync|pools list``: customer groups, group types and QR pools.

``pools sync`` talks to WeCom directly and prints one line per group type; it exits 1 when any
line is an error, after doing everything else it could.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select

from handlers.groups.models import GroupChat, GroupMember, GroupPool
from scrm.cli_support import Env, command_env, load_playbook_or_fail, print_sync_results, wecom_client
from scrm.kernel.clock import Clock
from scrm.kernel.config import Settings

# ------------------------------------------------------------------------------ groups


async def cmd_groups(args: argparse.Namespace, settings: Settings, *, clock: Clock | None = None) -> int:
    from scrm.cli_support import UserError

    async with command_env(settings, clock) as env:
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
    from handlers.groups.groupsync import sync_all
    from handlers.radar.api import LinkMaker
    from scrm.kernel.inbox import Inbox
    from scrm.kernel.scheduler import Scheduler

    playbook = load_playbook_or_fail(env.settings)
    inbox = Inbox(env.engine, env.sessions, env.settings.inbox, env.clock)
    scheduler = Scheduler(env.engine, env.sessions, env.settings.scheduler, env.clock, inbox)
    wecom = wecom_client(env)
    try:
        results = await sync_all(env.sessions, wecom, playbook, env.clock, env.settings.playbook.materials_dir,
                                 scheduler, LinkMaker(env.settings))
    finally:
        await wecom.close()
    return print_sync_results(results, "subject")



# ------------------------------------------------------------------------------ parser


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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
