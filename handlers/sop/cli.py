"""``scrm sop validate|plan|schema|reload``: the playbook from an ops admin's chair.

``plan`` runs the real planner (the same code the service runs) against the database for each
slot of each day, inside a transaction that is rolled back, so it shows what would go to whom
with every policy skip; without a database it falls back to playbook dates for a sample group.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from scrm.kernel.config import Settings
from scrm.playbook.quiet import local_day


def _load(settings: Settings, today: date | None = None) -> Any:
    """The playbook as of ``today`` (default: the clock's now, read in the policy's time zone)."""
    from scrm.kernel.clock import SystemClock
    from scrm.playbook import load_playbook

    return load_playbook(settings.playbook.sop_dir, settings.playbook.materials_dir,
                         today=today or SystemClock().now())


def cmd_validate(args: argparse.Namespace, settings: Settings) -> int:
    """Errors and warnings as ``file:line: key: message``; exit 2 on errors (or, with --strict,
    on warnings too: a playbook repository's own CI fails 30 days before a material expires)."""
    from scrm.cli_support import PLAYBOOK_CHECKS
    from scrm.playbook import PlaybookError

    today = date.fromisoformat(args.date) if args.date else None
    try:
        pb = _load(settings, today)
    except PlaybookError as exc:
        # The features' own files (sop/referral.yaml …) are checked whatever the playbook's state.
        for issue in [*exc.errors, *(i for check in PLAYBOOK_CHECKS for i in check(settings, None))]:
            print(issue)
        for issue in getattr(exc, "warnings", ()):
            print(f"warning: {issue}")
        return 2
    feature_issues = [issue for check in PLAYBOOK_CHECKS for issue in check(settings, pb)]
    for issue in feature_issues:
        print(issue)
    for issue in pb.warnings:
        print(f"{'error' if args.strict else 'warning'}: {issue}")
    if feature_issues:
        return 2
    if args.strict and pb.warnings:
        print(f"refused (--strict): {len(pb.warnings)} warning(s)")
        return 2
    print(f"ok: {len(pb.calendars)} calendars, {len(pb.paths)} paths, {len(pb.reminders)} reminders, "
          f"{len(pb.materials)} materials")
    return 0


def cmd_schema(args: argparse.Namespace, settings: Settings) -> int:
    from scrm.playbook import playbook_json_schema

    print(json.dumps(playbook_json_schema(), ensure_ascii=False, indent=2))
    return 0


async def cmd_reload(args: argparse.Namespace, settings: Settings) -> int:
    """Ask the running service (its control socket) to reload, and say what it did."""
    from scrm.cli_support import UserError
    from scrm.kernel.control import NoService, control_socket_path, request_reload

    path = control_socket_path(settings)
    try:
        outcome = await request_reload(path, timeout_s=args.timeout)
    except NoService:
        raise UserError(f"no running service on {path} (is `scrm serve` running with this config?); "
                        "the playbook is read at its next start: check it with `scrm sop validate`") from None
    except TimeoutError:
        raise UserError(f"the service on {path} did not answer within {args.timeout:g} s") from None
    if outcome["applied"]:
        for warning in outcome.get("warnings", []):
            print(f"warning: {warning}")
        print(f"applied: playbook version {outcome['version']} is running")
        return 0
    for error in outcome["errors"]:
        print(error)
    print(f"refused: the service keeps running version {outcome['version']}")
    return 2


def _no_database(settings: Settings) -> str | None:
    """Why there is no database to plan against (an SQLite file that does not exist), else None."""
    url = settings.database.url
    if settings.database.is_sqlite and "///" in url:
        path = url.split("///", 1)[1].split("?", 1)[0]
        if path and path != ":memory:" and not Path(path).exists():
            return f"{path} does not exist"
    return None


# A year ahead at most: the planner walks every customer for every day, and a typo such as
# --days 100000 would otherwise run silently for minutes.
MAX_PLAN_DAYS = 366


def _plan_start(args: argparse.Namespace) -> date | None:
    """--start and --days checked before anything is loaded: a typo is one line, not a traceback."""
    from scrm.cli_support import UserError

    if not 1 <= args.days <= MAX_PLAN_DAYS:
        raise UserError(f"--days {args.days}: must be between 1 and {MAX_PLAN_DAYS}")
    if args.start is None:
        return None
    try:
        return date.fromisoformat(args.start)
    except ValueError as exc:
        raise UserError(f"--start {args.start}: not a date ({exc}); expected YYYY-MM-DD, e.g. 2026-11-02") from None


async def cmd_plan(args: argparse.Namespace, settings: Settings) -> int:
    from sqlalchemy.exc import SQLAlchemyError

    from scrm.kernel.clock import SystemClock

    start = _plan_start(args)
    settings.playbook.require_sop_dir()
    pb = _load(settings)
    if start is None:  # today where the playbook's customers are
        start = local_day(pb, SystemClock().now())
    why = _no_database(settings)
    lines: list[str] = []
    if why is None:
        try:
            lines = await _plan_db(settings, pb, start, args.days, args.sop)
        except (SQLAlchemyError, OSError) as exc:  # unreachable or not migrated; a bug still shows
            why = type(exc).__name__
    if why is not None:  # preview from the playbook alone
        print(f"(no database: {why}; showing playbook dates for a sample group and customer)")
        from scrm.playbook import format_plan, plan_playbook

        occ = [o for o in plan_playbook(pb, start, args.days) if not args.sop or args.sop in o.source]
        lines = format_plan(occ)
    for line in lines:
        print(line)
    return 0


async def _plan_db(settings: Settings, pb: Any, start: date, days: int, only: str | None) -> list[str]:
    from handlers.sop.engine import Planned
    from handlers.sop.planner import DayPlanner
    from scrm.adapters.db.engine import make_engine, make_sessionmaker
    from scrm.kernel.progress import Progress

    engine = make_engine(settings.database.url)
    sessions = make_sessionmaker(engine)
    lines: list[str] = []
    try:  # plans only read; the transaction is rolled back all the same
        async with sessions() as session:
            # A day takes seconds with a million customers: say where the run is, on stderr.
            progress = Progress("sop plan", days, every_s=1.0)
            for offset in range(days):
                day = start + timedelta(days=offset)
                progress.update(offset, f"{day}")
                sends: Counter[str] = Counter()
                skips: Counter[str] = Counter()
                carried: Counter[str] = Counter()
                # One run over the day's slots: caps and task limits carry from slot to slot.
                async for d in DayPlanner(pb, day, only_source=only).run(session):
                    if isinstance(d, Planned):
                        sends[f"{d.at:%H:%M} {d.source} {d.step} → {d.kind}"] += 1
                    elif d.carry is not None:  # over the manager's daily limit: next workday
                        carried[f"{d.carry.at:%H:%M} {d.source} {d.step} → task ({d.reason})"] += 1
                    else:
                        skips[d.reason.split(":")[0]] += 1
                # Every day gets a line, so the preview reads like a calendar.
                weekday = "一二三四五六日"[day.weekday()]
                head = f"{day} 周{weekday}: {sum(sends.values())} sends, {sum(skips.values())} skipped"
                lines.append(head + (f", {sum(carried.values())} carried over" if carried else ""))
                lines += [f"    {n:>7} × {k}" for k, n in sorted(sends.items())]
                lines += [f"    skipped {n:>7} × {k}" for k, n in sorted(skips.items())]
                lines += [f"    carried over {n:>7} × {k}" for k, n in sorted(carried.items())]
            progress.done(days, f"{days} days")
            await session.rollback()
    finally:
        await engine.dispose()
    return lines


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("sop", help="the playbook: validate, plan, schema, reload")
    s = p.add_subparsers(dest="sop_command", required=True)
    v = s.add_parser("validate", help="check sop/ and materials/; errors as file:line: key: message")
    v.add_argument("--strict", action="store_true",
                   help="warnings (a material expiring within 30 days, expired ones in use) are errors too")
    v.add_argument("--date", help="check as of this day (YYYY-MM-DD), default today")
    v.set_defaults(func=cmd_validate)
    pl = s.add_parser("plan", help="what would go to whom and when, with policy skips")
    pl.add_argument("--days", type=int, default=30)
    pl.add_argument("--sop", help="only this calendar or path (name)")
    pl.add_argument("--start", help="first day (YYYY-MM-DD), default today")
    pl.set_defaults(func=cmd_plan)
    s.add_parser("schema", help="JSON Schema of the playbook files").set_defaults(func=cmd_schema)
    r = s.add_parser("reload", help="ask the running service to reload the playbook, and say what it did")
    r.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for the outcome")
    r.set_defaults(func=cmd_reload)
    # `scrm materials approve`: the content library's sign-off, next to the playbook's commands.
    from handlers.sop.approve_cli import register as register_materials

    register_materials(sub)
    # `scrm campaign`: one-off campaigns run by this engine (see campaign_cli).
    from handlers.sop.campaign_cli import register as register_campaign

    register_campaign(sub)
