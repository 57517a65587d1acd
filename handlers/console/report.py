"""``scrm report cockpit [--days N] [--dept PATH | --manager USERID] [--json | --csv]``: the cockpit's
figures for the bank's BI or a weekly review, from the same function as the page
(:func:`handlers.console.cockpit.cockpit`), so both always agree. It reads with the whole bank's
grant (whoever runs it has the database); ``--dept`` narrows it like the page's drill-down."""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from typing import Any
from zoneinfo import ZoneInfo

from handlers.console.access import Grant, Role
from handlers.console.cockpit import PERIODS, cockpit
from handlers.console.jobs import zone_of
from handlers.console.scope import BadScope
from scrm.kernel.clock import Clock
from scrm.kernel.config import Settings

REPORTER = Grant("cli:report", Role.AUDITOR)


def as_json(data: dict[str, Any]) -> str:
    """Stable text: sorted keys, no spaces to vary, Chinese kept readable."""
    return json.dumps(data, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def as_csv(data: dict[str, Any]) -> str:
    """One figure a line: ``section,item,figure,current,previous``."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["section", "item", "figure", "current", "previous"])
    for name, f in data["figures"].items():
        w.writerow(["figures", "", name, _cell(f["current"]), _cell(f["previous"])])
    for c in data["channels"]:
        for kind in ("added", "lost"):
            w.writerow(["channels", c["channel"], kind, c[kind]["current"], c[kind]["previous"]])
    for s in data["skips"]:
        w.writerow(["skips", s["reason"], "skipped", s["current"], s["previous"]])
    for row in data["retention"]:
        w.writerow(["retention", row["week"], "added", row["added"], ""])
        for n in ("d1", "d7", "d30"):
            kept = row[n]
            w.writerow(["retention", row["week"], n, "" if kept is None else _cell(kept["rate"]), ""])
    for section, name in (("teams", "department"), ("managers", "userid")):
        for r in data[section]:
            for k, v in r.items():
                if k not in (name, "name", "department") or (k == "department" and section == "managers"):
                    w.writerow([section, r[name], k, _cell(v), ""])
    return buf.getvalue()


def _cell(v: Any) -> Any:
    return "" if v is None else v


async def cmd_report(args: argparse.Namespace, settings: Settings, clock: Clock | None = None) -> int:
    from scrm.cli_support import UserError, command_env, load_playbook_or_fail

    if args.days not in PERIODS:
        raise UserError(f"--days must be one of {', '.join(map(str, PERIODS))}")
    try:  # the bank's time zone, as the page takes it; a broken playbook does not stop a report
        zone = zone_of(load_playbook_or_fail(settings), settings)
    except UserError:
        zone = zone_of(None, settings)
    async with command_env(settings, clock) as env, env.sessions() as db:
        now = env.clock.now()
        try:
            data = await cockpit(db, REPORTER, days=args.days, today=now.astimezone(ZoneInfo(zone)).date(), now=now,
                                 zone=zone, dept=args.dept or "", manager=args.manager or "")
        except BadScope as exc:
            raise UserError(str(exc)) from None
    sys.stdout.write(as_csv(data) if args.csv else as_json(data) + "\n")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    r = sub.add_parser("report", help="figures as JSON or CSV (the console's cockpit)")
    rsub = r.add_subparsers(dest="report_name", required=True)
    c = rsub.add_parser("cockpit", help="the cockpit's figures for a period and a part of the bank")
    c.add_argument("--days", type=int, default=30, help="the period, ending today: 7, 30 or 90 (default 30)")
    where = c.add_mutually_exclusive_group()
    where.add_argument("--dept", help="a department path (分行/支行/团队); default the whole bank")
    where.add_argument("--manager", help="one manager's userid")
    fmt = c.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="JSON (the default)")
    fmt.add_argument("--csv", action="store_true", help="CSV, one figure a line")
    r.set_defaults(func=cmd_report)
