"""``scrm membership check|report``.

``check`` reads ``sop/membership.yaml`` (``file:line: key: message``, exit 2) and prints what it
defines; ``report`` prints the level distribution, the points outstanding (the bank's liability),
the top earners and the ledger's audit (exit 1 when a balance differs from its entries).
"""

from __future__ import annotations

import argparse
import sys

from scrm.cli_support import command_env
from scrm.kernel.clock import Clock
from scrm.kernel.config import Settings


def _problems(settings: Settings) -> int:
    from handlers.crm.api import EVENT_KINDS
    from handlers.membership.rules import check

    issues = check(settings.playbook.sop_dir, EVENT_KINDS)
    for issue in issues:
        print(issue, file=sys.stderr)
    if issues:
        print(f"scrm: {len(issues)} problem(s) in the membership rules", file=sys.stderr)
    return len(issues)


async def cmd_membership(args: argparse.Namespace, settings: Settings, *, clock: Clock | None = None) -> int:
    from handlers.crm.api import EVENT_KINDS
    from handlers.membership.rules import load_membership

    if _problems(settings):
        return 2
    rules = load_membership(settings.playbook.sop_dir, EVENT_KINDS)
    if args.membership_command == "check":
        expiry = rules.expiry
        lapse = (f"{expiry.after_days} day(s) after earning" if expiry.after_days is not None
                 else f"end of the year +{expiry.year_end_after}" if expiry.year_end_after is not None else "never")
        print(f"{rules.source}: {len(rules.behaviours)} behaviour(s), {len(rules.levels)} level(s) over "
              f"{rules.window_days} day(s), review every {rules.review_months} month(s) (at most "
              f"{rules.max_steps} level(s) down), points lapse {lapse}")
        for b in rules.behaviours:
            caps = f"{b.daily_cap or '-'}/day, {b.monthly_cap or '-'}/month"
            print(f"  {b.name} ({b.label}) on {b.on}: {b.points} points, {b.growth} growth, {caps}")
        for lv in rules.levels:
            print(f"  level {lv.name} ({lv.label}) from {lv.growth}, keeps at {lv.keep}")
        return 0
    from handlers.membership.report import build, render

    async with command_env(settings, clock) as env, env.sessions() as session:
        report = await build(session, rules, top=args.top)
    print("\n".join(render(report, rules)))
    return 1 if report.mismatches or report.negative else 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    s = sub.add_parser("membership", help="points, growth value and levels (sop/membership.yaml)")
    msub = s.add_subparsers(dest="membership_command", required=True)
    msub.add_parser("check", help="check sop/membership.yaml (file:line errors, exit 2)")
    r = msub.add_parser("report", help="level distribution, points outstanding, top earners, ledger audit")
    r.add_argument("--top", type=int, default=10, help="how many top earners to list (default 10)")
    s.set_defaults(func=cmd_membership)
