"""``scrm report NAME [--since YYYY-MM-DD] [--until YYYY-MM-DD | --days N] [--by branch|team|manager]
[--dept PATH] [--json | --csv]``: a named report of :mod:`handlers.console.reports` (``cockpit``,
``tasks`` …) for the bank's BI or a weekly review, from the same functions as the pages and the
BI API, so all always agree. It reads with the whole bank's grant (whoever runs it has the
database); ``--dept`` narrows it like the page's drill-down. JSON has sorted keys, so two runs
over the same rows print the same bytes; CSV has one figure a line."""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from collections.abc import Iterator
from typing import Any

from handlers.console.access import Grant, Role
from handlers.console.jobs import zone_of
from handlers.console.reports import REPORTS, UNITS, BadAsk, ask, run, today_in
from handlers.console.scope import BadScope, ScopeRefused
from scrm.kernel.clock import Clock
from scrm.kernel.config import Settings
from scrm.playbook import Playbook

REPORTER = Grant("cli:report", Role.AUDITOR)
CSV_HEADER = ("section", "item", "figure", "current", "previous")
# What names a row of a list (the first of these it has), in the CSV's item column.
ROW_IDS = ("unit", "userid", "department", "channel", "reason", "week", "day", "survey")


def as_json(data: dict[str, Any]) -> str:
    """Stable text: sorted keys, no spaces to vary, Chinese kept readable."""
    return json.dumps(data, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def as_csv(data: dict[str, Any]) -> str:
    """One figure a line: ``section,item,figure,current,previous``. A figure with a previous
    period fills both; any other value fills ``current``; a nested figure is named ``a.b``; the
    rows of a list are named by their id (``unit``, ``userid``, ``department``, ``week`` …)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_HEADER)
    for section, value in data.items():
        if isinstance(value, list):
            for row in value:
                key = next((k for k in ROW_IDS if isinstance(row, dict) and k in row), None)
                item = row.get(key, "") if key else ""
                rest = {k: v for k, v in row.items() if k != key} if isinstance(row, dict) else row
                for figure, cur, prev in _flat(section if _paired(rest) else "", rest):
                    w.writerow([section, _cell(item), figure, _cell(cur), _cell(prev)])
        else:
            for figure, cur, prev in _flat(section if not isinstance(value, dict) else "", value):
                w.writerow([section, "", figure, _cell(cur), _cell(prev)])
    return buf.getvalue()


def _paired(value: Any) -> bool:
    return isinstance(value, dict) and "current" in value and "previous" in value


def _flat(name: str, value: Any) -> Iterator[tuple[str, Any, Any]]:
    """(figure, current, previous) for every figure inside ``value``."""
    if _paired(value) and not isinstance(value["current"], dict):
        yield name, value["current"], value["previous"]
        value = {k: v for k, v in value.items() if k not in ("current", "previous")}
        name = ""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _flat(f"{name}.{k}" if name else str(k), v)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _flat(f"{name}[{i}]", v)
    else:
        yield name, value, None


def _cell(v: Any) -> Any:
    return "" if v is None else v


async def cmd_report(args: argparse.Namespace, settings: Settings, clock: Clock | None = None) -> int:
    from scrm.cli_support import UserError, command_env, load_playbook_or_fail

    playbook: Playbook | None
    try:  # the bank's time zone, as the pages take it; a broken playbook does not stop a report
        playbook = load_playbook_or_fail(settings)
    except UserError:
        playbook = None
    zone = zone_of(playbook, settings)
    async with command_env(settings, clock) as env, env.sessions() as db:
        now = env.clock.now()
        try:
            wanted = ask(args.name, today=today_in(zone, now), since=args.since, until=args.until, days=args.days,
                         by=args.by)
            data = await run(db, REPORTER, wanted, zone=zone, now=now, dept=args.dept or "", playbook=playbook)
        except (BadAsk, BadScope) as exc:
            raise UserError(str(exc)) from None
        except ScopeRefused as exc:  # not with the whole bank's grant; kept for a narrower reporter
            raise UserError(f"{exc} is outside the reporter's scope") from None
    sys.stdout.write(as_csv(data) if args.csv else as_json(data) + "\n")
    return 0


def add_arguments(r: argparse.ArgumentParser) -> None:
    # Dates, days and units are checked by the command (one line, exit 2), not by argparse.
    r.add_argument("name", help="the report: " + "; ".join(f"{x.name} ({x.description})" for x in REPORTS.values()))
    r.add_argument("--since", help="the first day, YYYY-MM-DD (default: 30 days ending --until)")
    r.add_argument("--until", help="the last day, YYYY-MM-DD, today at the latest (default today)")
    r.add_argument("--days", help="instead of --since/--until: the N days ending today")
    r.add_argument("--by", help=f"one row per unit: {', '.join(UNITS)} (branch = 分行/支行, team = 分行/支行/团队)")
    r.add_argument("--dept", help="only this department path (分行/支行/团队); default the whole bank")
    fmt = r.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="JSON (the default)")
    fmt.add_argument("--csv", action="store_true", help="CSV, one figure a line")


def parse(argv: list[str]) -> argparse.Namespace:
    """The command's arguments as ``scrm report`` parses them (for tests and scripts)."""
    p = argparse.ArgumentParser(prog="scrm report")
    add_arguments(p)
    return p.parse_args(argv)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    r = sub.add_parser("report", help="a named report (cockpit, tasks …) as JSON or CSV")
    add_arguments(r)
    r.set_defaults(func=cmd_report)
