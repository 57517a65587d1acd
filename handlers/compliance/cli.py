"""``scrm audit verify | export | purge``: the message trail for auditors and operators.

``verify`` exits 0 for an intact trail and 1 for a broken one (a line per problem); bad input
exits 2 like every command. ``export`` needs ``--as`` an auditor of the console's access file
(``sop/console.yaml``) and is itself recorded in the console's audit log.
"""

from __future__ import annotations

import argparse
import sys
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from handlers.compliance.chain import verify
from handlers.compliance.export import csv_header, csv_line, json_line, period, shown
from handlers.compliance.purge import purge
from handlers.console.api import AccessHolder, Role, record_audit
from scrm.kernel.clock import Clock
from scrm.kernel.config import Settings


def _day(text: str, flag: str) -> date:
    from scrm.cli_support import UserError

    try:
        return date.fromisoformat(text)
    except ValueError:
        raise UserError(f"{flag} must be a date like 2026-12-01, not {text!r}") from None


async def cmd_audit(args: argparse.Namespace, settings: Settings, *, clock: Clock | None = None) -> int:
    from scrm.cli_support import UserError, command_env

    zone = ZoneInfo(settings.playbook.timezone)
    role = ""
    if args.audit_command == "export":
        since, until = _day(args.since, "--since"), _day(args.until, "--until")
        if until < since:
            raise UserError("--until is before --since")
        grant = AccessHolder.for_settings(settings).current().grant_of(args.as_userid)
        if grant is None or grant.role is not Role.AUDITOR:
            raise UserError(f"{args.as_userid} is not an auditor in the console's access file; "
                            "exports are for auditors")
        role = grant.role.value
    async with command_env(settings, clock) as env:
        if args.audit_command == "verify":
            async with env.sessions() as db:
                verdict = await verify(db)
            for problem in verdict.problems:
                print(f"BROKEN: {problem}")
            state = "intact" if verdict.ok else f"BROKEN ({len(verdict.problems)} problem(s))"
            print(f"message trail {state}: {verdict.checked} record(s), {verdict.first_seq}–{verdict.last_seq}, "
                  f"head {verdict.head_hash}")
            return 0 if verdict.ok else 1
        if args.audit_command == "purge":
            today = env.clock.now().astimezone(zone).date()
            async with env.sessions() as db, db.begin():
                gone = await purge(db, today)
            print(f"{gone} expired record(s) purged")
            return 0
        start = datetime.combine(since, time(), zone)
        end = datetime.combine(until + timedelta(days=1), time(), zone)
        count = 0
        if args.csv:
            sys.stdout.write(csv_header() + "\n")
        async with env.sessions() as db:
            async for record in period(db, start, end):
                row = shown(record, reveal=args.reveal)
                sys.stdout.write((csv_line(row) if args.csv else json_line(row)) + "\n")
                count += 1
            record_audit(db, env.clock.now(), args.as_userid, role, "trail_export",
                         f"{since}..{until}", "cli", records=count, revealed=bool(args.reveal))
            await db.commit()
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    a = sub.add_parser("audit", help="the message trail: verify its chain, export it, purge expired records")
    asub = a.add_subparsers(dest="audit_command", required=True)
    asub.add_parser("verify", help="re-check every record's hash and link (exit 1 when the trail was tampered with)")
    e = asub.add_parser("export", help="a period's records as JSON lines (default) or CSV")
    e.add_argument("--since", required=True, help="first day (the bank's local date), e.g. 2026-12-01")
    e.add_argument("--until", required=True, help="last day, included")
    e.add_argument("--as", dest="as_userid", required=True, help="the exporting auditor's WeCom userid")
    e.add_argument("--csv", action="store_true", help="CSV instead of JSON lines")
    e.add_argument("--reveal", action="store_true", help="customers' ids in full instead of pseudonyms")
    asub.add_parser("purge", help="purge the records past their retention now (the job does it nightly)")
    a.set_defaults(func=cmd_audit)
