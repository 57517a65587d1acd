"""``scrm membership check|report|redeem``.

``check`` reads ``sop/membership.yaml`` (``file:line: key: message``, exit 2) and prints what it
defines; ``report`` prints the level distribution, the points outstanding (the bank's liability),
the top earners and the ledger's audit (exit 1 when a balance differs from its entries);
``redeem CUSTOMER ITEM POINTS`` reserves the points and queues the fulfilment call, which the
running service sends (exit 2, one line, when it cannot be reserved).
"""

from __future__ import annotations

import argparse
import sys
import uuid
from collections.abc import Mapping
from typing import Any
from zoneinfo import ZoneInfo

from scrm.cli_support import command_env, report_problems
from scrm.kernel.clock import Clock
from scrm.kernel.config import Settings


def problems(settings: Settings) -> list[str]:
    """Every problem of sop/membership.yaml, one ``file:line: key: message`` each (``scrm sop
    validate`` prints them with the playbook's)."""
    from handlers.crm.api import EVENT_KINDS
    from handlers.membership.rules import check

    return [str(issue) for issue in check(settings.playbook.sop_dir, EVENT_KINDS)]


def _problems(settings: Settings) -> int:
    from handlers.crm.api import EVENT_KINDS
    from handlers.membership.rules import check

    issues = check(settings.playbook.sop_dir, EVENT_KINDS)
    if issues:
        report_problems(issues, "the membership rules")
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
        for q in rules.quizzes:
            print(f"  quiz {q.name}: {len(q.choices)} choices")
        return 0
    if args.membership_command == "link":
        from handlers.membership.links import Links

        if args.kind == "quiz" and rules.quiz(args.quiz or "") is None:
            known = ", ".join(q.name for q in rules.quizzes) or "none"
            print(f"scrm: unknown quiz {args.quiz!r} (sop/membership.yaml quizzes: {known})", file=sys.stderr)
            return 2
        print(Links(settings).link(args.kind, args.customer, (args.quiz or "") if args.kind == "quiz" else ""))
        return 0
    if args.membership_command == "redeem":
        return await _redeem(args, settings, rules, clock)
    from handlers.membership.report import build, render, since_months

    async with command_env(settings, clock) as env, env.sessions() as session:
        tz = ZoneInfo(settings.playbook.timezone)
        today = env.clock.now().astimezone(tz).date()
        report = await build(session, rules, top=args.top, since=since_months(today, args.months), tz=tz)
    print("\n".join(render(report, rules)))
    return 1 if report.mismatches or report.negative else 0


async def _queued_only(_box: Any, _row: Mapping[str, Any]) -> Any:
    raise RuntimeError("the CLI only queues actions; the running service sends them")


async def _redeem(args: argparse.Namespace, settings: Settings, rules: Any, clock: Clock | None) -> int:
    from handlers.crm.api import WEBHOOK_KIND
    from handlers.membership.redeem import RedemptionRefused, request_redemption
    from handlers.membership.settings import membership_settings
    from scrm.kernel.outbox import Outbox

    async with command_env(settings, clock) as env:
        # Queues only: the service's outbox (with the CRM's transport) sends the call.
        outbox = Outbox(env.engine, env.sessions, settings.outbox, env.clock, None)
        outbox.executors.setdefault(WEBHOOK_KIND, _queued_only)
        try:
            async with env.sessions() as session, session.begin():
                r = await request_redemption(
                    session, outbox, rules, request_id=args.request_id or uuid.uuid4().hex,
                    external_userid=args.customer, item=args.item, points=args.points, now=env.clock.now(),
                    tz=ZoneInfo(settings.playbook.timezone), timeout_s=membership_settings(settings).redeem_timeout_s)
        except RedemptionRefused as exc:
            print(f"scrm: redemption refused: {exc}", file=sys.stderr)
            return 2
    again = " (this request was made before)" if r.repeat else ""
    print(f"redemption {r.id}: {r.points} point(s) of {r.external_userid} for {r.item}: {r.state}{again}; "
          f"spendable {r.balance}, reserved {r.reserved}")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    s = sub.add_parser("membership", help="points, growth value and levels (sop/membership.yaml)")
    msub = s.add_subparsers(dest="membership_command", required=True)
    msub.add_parser("check", help="check sop/membership.yaml (file:line errors, exit 2)")
    r = msub.add_parser("report", help="level distribution, points outstanding, top earners, ledger audit")
    r.add_argument("--top", type=int, default=10, help="how many top earners to list (default 10)")
    r.add_argument("--months", type=int, default=3, help="level flows of this many months, this one included "
                                                         "(default 3)")
    k = msub.add_parser("link", help="a customer's own check-in or quiz link (send it to them 1:1)")
    k.add_argument("customer", help="the customer's external userid")
    k.add_argument("kind", choices=("checkin", "quiz"))
    k.add_argument("quiz", nargs="?", help="the quiz's name in sop/membership.yaml (kind quiz)")
    d = msub.add_parser("redeem", help="reserve points for an item; the fulfilment system confirms or cancels")
    d.add_argument("customer", help="the member's external userid")
    d.add_argument("item", help="the item's name or code in the bank's fulfilment system")
    d.add_argument("points", type=int, help="points the item costs")
    d.add_argument("--request-id", default="", help="idempotency id (default: a new one); the same id again "
                                                    "reserves nothing more")
    s.set_defaults(func=cmd_membership)
