"""``scrm succession move|list|show|rules|sweep``.

``move --from A --to B (--all | EXT…)`` or ``move --file moves.csv`` asks the running service
for an in-office move (stored as an inbox event; the service plans and calls WeCom). ``list``
prints the batches, ``show BATCH`` every customer with its state and why it failed; ``rules``
checks ``sop/succession.yaml`` (``file:line: key: message``, exit 2); ``sweep`` asks for a sweep
of ``get_unassigned_list`` now.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import TYPE_CHECKING

from scrm.cli_support import Env, UserError, command_env, report_problems
from scrm.kernel.clock import Clock
from scrm.kernel.config import Settings

if TYPE_CHECKING:
    from scrm.kernel.inbox import Inbox


async def cmd_succession(args: argparse.Namespace, settings: Settings, *, clock: Clock | None = None) -> int:
    if args.succession_command in ("rules", "check"):
        return _rules(settings)
    async with command_env(settings, clock) as env:
        if args.succession_command == "move":
            return await _move(env, args)
        if args.succession_command == "sweep":
            return await _sweep(env)
        if args.succession_command == "show":
            return await _show(env, args.batch)
        return await _list(env)


def _rules(settings: Settings) -> int:
    from handlers.succession.rules import load_rules
    from scrm.playbook.issues import PlaybookError

    try:
        rules = load_rules(settings.playbook.sop_dir)
    except PlaybookError as exc:
        return report_problems(exc.errors, "the succession rules")
    print(f"{rules.source}: {len(rules.rules)} rule(s), ops queue: {', '.join(rules.ops_queue) or '-'}")
    for r in rules.rules:
        who = ", ".join(sorted(r.handover)) or "anyone"
        where = f" under {r.department}" if r.department else ""
        how = f"to {r.to}" if r.to else f"{r.pick}" + (f" among {r.among}" if r.among else "")
        print(f"  {r.name}: {who}{where} → {how}")
    return 0


async def _inbox(env: Env) -> Inbox:
    from scrm.kernel.inbox import Inbox

    return Inbox(env.engine, env.sessions, env.settings.inbox, env.clock)


async def _move(env: Env, args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from handlers.contacts.api import Follow, Member
    from handlers.succession.requests import MoveRecord, parse_move_file, request_id_of, store_moves

    if args.file is not None:
        try:
            data = await asyncio.to_thread(args.file.read_bytes)
        except OSError as exc:
            raise UserError(f"cannot read {args.file}: {exc.strerror or exc}") from None
        parsed = parse_move_file(data, str(args.file))
        if parsed.errors:
            return report_problems(parsed.errors, str(args.file), outcome="nothing moved")
        moves, origin = parsed.moves, "file"
    else:
        if not args.from_userid or not args.to_userid:
            raise UserError("say whose customers go to whom: --from USERID --to USERID (or --file FILE.csv)")
        if args.from_userid == args.to_userid:
            raise UserError("--from and --to are the same member")
        async with env.sessions() as session:
            known = dict((await session.execute(select(Member.userid, Member.status).where(
                Member.userid.in_([args.from_userid, args.to_userid])))).all())
            if known.get(args.to_userid) != "active":
                raise UserError(f"--to {args.to_userid!r} is not an active member (see `scrm staff list`)")
            customers = list(args.customers)
            if args.all:
                customers = list((await session.scalars(select(Follow.external_userid).where(
                    Follow.userid == args.from_userid, Follow.status == "active"))).all())
        if not customers:
            raise UserError(f"no customers to move: name them, or --all for every active customer of "
                            f"{args.from_userid!r}")
        message = args.message or ""
        rid = args.request_id or request_id_of(args.from_userid, args.to_userid, customers, message)
        try:
            moves = [MoveRecord.model_validate({"request_id": rid, "from": args.from_userid, "to": args.to_userid,
                                                "external_userids": customers, "message": message})]
        except ValueError as exc:
            raise UserError(f"invalid move: {str(exc).splitlines()[-1].strip()}") from None
        origin = "cli"
    inbox = await _inbox(env)
    async with env.sessions() as session, session.begin():
        await store_moves(session, inbox, moves, origin, env.clock.now())
    for m in moves:
        print(f"move {m.request_id}: {len(m.external_userids)} customer(s) {m.handover} → {m.takeover} "
              f"queued; follow it with `scrm succession show m:{m.request_id}`")
    return 0


async def _sweep(env: Env) -> int:
    from handlers.succession.events import SuccessionSweep

    inbox = await _inbox(env)
    now = env.clock.now()
    async with env.sessions() as session, session.begin():
        await inbox.add_internal(session, SuccessionSweep(at=now), f"succession:sweep:cli:{now.isoformat()}")
    print("sweep queued: the service hands over what WeCom lists as unassigned")
    return 0


async def _list(env: Env) -> int:
    from handlers.succession.report import batch_lines

    async with env.sessions() as session:
        lines = await batch_lines(session)
    print("\n".join(lines) if lines else "(no handovers yet)")
    return 0


async def _show(env: Env, batch_id: str) -> int:
    from handlers.succession.report import item_lines

    async with env.sessions() as session:
        lines = await item_lines(session, batch_id)
    if lines is None:
        raise UserError(f"no handover batch {batch_id!r} (see `scrm succession list`)")
    print("\n".join(lines))
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    s = sub.add_parser("succession", help="handovers of customers between managers (离职/在职继承)")
    ssub = s.add_subparsers(dest="succession_command", required=True)
    move = ssub.add_parser("move", help="move customers from one manager to another (在职继承)")
    move.add_argument("--from", dest="from_userid")
    move.add_argument("--to", dest="to_userid")
    move.add_argument("--all", action="store_true", help="every active customer of --from")
    move.add_argument("--message", help="the handover message the customer reads (≤200 characters)")
    move.add_argument("--request-id", help="names the request (default: derived from its content)")
    move.add_argument("--file", type=Path, help="CSV: from,to,external_userid[,message]")
    move.add_argument("customers", nargs="*", metavar="EXTERNAL_USERID")
    ssub.add_parser("list", help="handover batches with their counts per state")
    show = ssub.add_parser("show", help="one batch: every customer or group, its state and why")
    show.add_argument("batch")
    ssub.add_parser("check", help="check sop/succession.yaml (file:line errors, exit 2) and print its rules")
    ssub.add_parser("rules", help="the same as check")
    ssub.add_parser("sweep", help="hand over what WeCom lists as unassigned, now")
    s.set_defaults(func=cmd_succession)
