"""``scrm materials approve ID [ID…] --by NAME [--at DATE]``: compliance sign-off, bound to content.

Writes ``approved: {by, at, hash}`` into each material's YAML (comments and layout kept; see
:mod:`scrm.playbook.approve`) and prints what it approved. The approval is committed and
reviewed like any other playbook change; the service reads it at its next reload.
"""

from __future__ import annotations

import argparse
from datetime import date
from zoneinfo import ZoneInfo

from scrm.kernel.clock import Clock
from scrm.kernel.config import Settings


def _day(text: str) -> date:
    from scrm.cli_support import UserError

    try:
        return date.fromisoformat(text)
    except ValueError:
        raise UserError(f"--at must be a date like 2026-12-01, not {text!r}") from None


def cmd_approve(args: argparse.Namespace, settings: Settings, *, clock: Clock | None = None) -> int:
    from scrm.cli_support import UserError
    from scrm.kernel.clock import SystemClock
    from scrm.playbook.approve import ApprovalRefused, approve_materials

    # The bank's today, where its customers are (not the machine's time zone).
    at = _day(args.at) if args.at else (clock or SystemClock()).now().astimezone(
        ZoneInfo(settings.playbook.timezone)).date()
    try:
        done = approve_materials(settings.playbook.sop_dir, settings.playbook.materials_dir, args.ids,
                                 by=args.by, at=at)
    except ApprovalRefused as exc:
        raise UserError(str(exc)) from None
    for approved in done:
        print(approved)
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("materials", help="the content library: compliance approval")
    s = p.add_subparsers(dest="materials_command", required=True)
    a = s.add_parser("approve", help="approve materials as they are now: writes approved: {by, at, hash}")
    a.add_argument("ids", nargs="+", metavar="ID", help="material ids")
    a.add_argument("--by", required=True, help="who approves (as recorded in the YAML and the message trail)")
    a.add_argument("--at", help="approval day (YYYY-MM-DD), default today in the playbook's time zone")
    a.set_defaults(func=cmd_approve)
