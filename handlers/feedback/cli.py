"""``scrm feedback report [--survey ID] [--by segment|tier|branch|manager|week|month]
[--since DATE] [--until DATE] [--days N] [--json]``: NPS with counts of promoters, passives and
detractors, per survey, over local days (default: the 30 days ending today)."""

from __future__ import annotations

import argparse
import json
import re
from datetime import date, timedelta
from zoneinfo import ZoneInfo

from scrm.cli_support import UserError, command_env
from scrm.kernel.clock import Clock
from scrm.kernel.config import Settings

DEFAULT_DAYS = 30
MAX_DAYS = 3660
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _day(text: str, what: str) -> date:
    try:
        if _DATE.fullmatch(text.strip()):
            return date.fromisoformat(text.strip())
    except ValueError:
        pass
    raise UserError(f"--{what} must be a date YYYY-MM-DD, not {text!r}")


def period(args: argparse.Namespace, today: date) -> tuple[date, date]:
    """The local days the report covers (checked: one line on a bad date or period)."""
    if args.days is not None and (args.since or args.until):
        raise UserError("give --days or --since/--until, not both")
    if args.days is not None:
        if not 1 <= args.days <= MAX_DAYS:
            raise UserError(f"--days must be 1..{MAX_DAYS}, not {args.days}")
        return today - timedelta(days=args.days - 1), today
    last = _day(args.until, "until") if args.until else today
    first = _day(args.since, "since") if args.since else last - timedelta(days=DEFAULT_DAYS - 1)
    if first > last:
        raise UserError(f"--since {first} is after --until {last}")
    return first, last


async def cmd_feedback(args: argparse.Namespace, settings: Settings, *, clock: Clock | None = None) -> int:
    from handlers.feedback.report import nps_rows, render

    async with command_env(settings, clock) as env:
        today = env.clock.now().astimezone(ZoneInfo(settings.playbook.timezone)).date()
        since, until = period(args, today)
        async with env.sessions() as session:
            rows = await nps_rows(session, since=since, until=until, by=args.by, survey=args.survey)
    if args.json:
        print(json.dumps({"since": since.isoformat(), "until": until.isoformat(), "by": args.by,
                          "rows": [r.as_json() for r in rows]}, ensure_ascii=False))
    elif not rows:
        print(f"no answers from {since} to {until}")
    else:
        print(f"feedback {since} .. {until}")
        print(render(rows, by=args.by))
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from handlers.feedback.report import UNITS

    f = sub.add_parser("feedback", help="customer feedback: NPS and satisfaction (sop/feedback.yaml)")
    fsub = f.add_subparsers(dest="feedback_command", required=True)
    r = fsub.add_parser("report", help="NPS, promoters, passives, detractors per survey and unit")
    r.add_argument("--survey", help="only this survey id")
    r.add_argument("--by", choices=UNITS, help="one row per unit (plus the whole survey)")
    r.add_argument("--since", help="first local day, YYYY-MM-DD")
    r.add_argument("--until", help="last local day, YYYY-MM-DD (default today)")
    r.add_argument("--days", type=int, help="the N days ending today")
    r.add_argument("--json", action="store_true", help="machine-readable output")
    f.set_defaults(func=cmd_feedback)
