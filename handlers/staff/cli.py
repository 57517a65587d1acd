"""``scrm staff sync|import|list|show``: the staff directory.

``sync`` reads WeCom's address book and applies it (names, department paths, team leads,
resigned members); ``import FILE.csv`` puts an HR file in (see :mod:`handlers.staff.hrfile`):
every problem is printed as ``file:line: message`` and a file with any problem imports nothing
(exit 2). ``list`` and ``show USERID`` print what the directory holds.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from scrm.cli_support import Env, UserError, command_env, report_problems, wecom_client
from scrm.kernel.clock import Clock
from scrm.kernel.config import Settings


async def cmd_staff(args: argparse.Namespace, settings: Settings, *, clock: Clock | None = None) -> int:
    async with command_env(settings, clock) as env:
        if args.staff_command == "sync":
            return await _sync(env)
        if args.staff_command == "import":
            return await _import(env, args.file)
        if args.staff_command == "show":
            return await _show(env, args.userid)
        return await _list(env, args.status)


async def _sync(env: Env) -> int:
    from handlers.staff.directory import apply_snapshot
    from handlers.staff.sync import read_directory
    from scrm.adapters.wecom.errors import WeComClientError

    wecom = wecom_client(env)
    try:
        snapshot = await read_directory(wecom)
    except WeComClientError as exc:
        raise UserError(f"WeCom's address book could not be read: {exc} (without address-book rights, "
                        "import the HR file: scrm staff import FILE.csv)") from None
    finally:
        await wecom.close()
    async with env.sessions() as session, session.begin():
        report = await apply_snapshot(session, snapshot, env.clock.now())
    print(report.summary("synced from WeCom"))
    return 0


async def _import(env: Env, path: Path) -> int:
    from sqlalchemy import select

    from handlers.contacts.api import Member
    from handlers.staff.directory import apply_hr
    from handlers.staff.hrfile import parse_hr_file

    try:
        data = await asyncio.to_thread(path.read_bytes)
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror or exc}") from None
    async with env.sessions() as session:
        known = set((await session.scalars(select(Member.userid))).all())
    parsed = parse_hr_file(data, str(path), known)
    if parsed.errors:
        return report_problems(parsed.errors, str(path), outcome="nothing imported")
    async with env.sessions() as session, session.begin():
        report = await apply_hr(session, parsed.rows, env.clock.now())
    print(report.summary(f"imported {path}"))
    return 0


async def _list(env: Env, status: str | None) -> int:
    from handlers.staff.directory import list_members

    async with env.sessions() as session:
        entries = await list_members(session, status)
    print(f"{'userid':<20} {'name':<10} {'status':<9} {'team_lead':<20} department")
    for e in entries:
        print(f"{e.userid:<20} {e.name or '-':<10} {e.status:<9} {e.team_lead or '-':<20} {e.department or '-'}")
    if not entries:
        print("(no members; run `scrm staff sync` or `scrm staff import FILE.csv`)")
    return 0


async def _show(env: Env, userid: str) -> int:
    from handlers.staff.directory import show_member

    async with env.sessions() as session:
        entry = await show_member(session, userid)
        lead_name = None
        if entry is not None and entry.team_lead:
            lead = await show_member(session, entry.team_lead)
            lead_name = lead.name if lead is not None else None
    if entry is None:
        raise UserError(f"no member {userid!r} in the staff directory")
    lead_text = "-"
    if entry.team_lead:
        lead_text = f"{entry.team_lead} ({lead_name or '?'}; {entry.lead_source})"
    print(f"userid:      {entry.userid}")
    print(f"name:        {entry.name or '-'}")
    print(f"status:      {entry.status}")
    print(f"department:  {entry.department or '-'}")
    print(f"team lead:   {lead_text}")
    print(f"leads:       {', '.join(entry.leads) or '-'}")
    print(f"team:        {', '.join(entry.reports) or '-'}")
    print(f"source:      {'WeCom address book' if entry.in_wecom else 'HR file or other'}")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    s = sub.add_parser("staff", help="the staff directory: members, departments, team leads")
    ssub = s.add_subparsers(dest="staff_command", required=True)
    ssub.add_parser("sync", help="read members and departments from WeCom's address book")
    imp = ssub.add_parser("import", help="import the HR file (CSV: userid,name,department,team_lead,status)")
    imp.add_argument("file", type=Path)
    ls = ssub.add_parser("list", help="every member with status, team lead and department")
    ls.add_argument("--status", choices=["active", "resigned"])
    show = ssub.add_parser("show", help="one member: department, team lead (and why), whom they lead")
    show.add_argument("userid")
    s.set_defaults(func=cmd_staff)
