"""``scrm referral code|report|check``.

``code CUSTOMER`` mints (or prints again) the customer's referral code and its QR code;
``report`` prints the referral funnel, the leaderboard, each segment's super users and the
flags; ``check`` reads ``sop/referral.yaml`` (``file:line: key: message``, exit 2) — ``scrm sop
validate`` runs the same check.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from scrm.cli_support import UserError, command_env, report_problems, wecom_client
from scrm.kernel.clock import Clock
from scrm.kernel.config import Settings

if TYPE_CHECKING:
    from handlers.referral.codes import ContactWayApi
    from handlers.referral.rules import ReferralRules


def problems(settings: Settings) -> list[str]:
    """Every problem of sop/referral.yaml, one ``file:line: key: message`` each."""
    from handlers.crm.api import EVENT_KINDS
    from handlers.referral.rules import check

    return [str(issue) for issue in check(settings.playbook.sop_dir, EVENT_KINDS)]


async def cmd_referral(args: argparse.Namespace, settings: Settings, *, clock: Clock | None = None,
                       wecom: ContactWayApi | None = None) -> int:
    """``wecom``: the client to mint with (tests pass the sandbox's; default: the configured one)."""
    from handlers.crm.api import EVENT_KINDS
    from handlers.referral.rules import load_referral

    issues = problems(settings)
    if issues:
        return report_problems(issues, "the referral rules")
    rules = load_referral(settings.playbook.sop_dir, EVENT_KINDS)
    if args.referral_command == "check":
        print(_describe(rules))
        return 0
    if args.referral_command == "code":
        return await _code(args, settings, clock, wecom)
    from handlers.referral.report import build, render

    async with command_env(settings, clock) as env, env.sessions() as session:
        report = await build(session, rules, now=env.clock.now(), top=args.top)
    print("\n".join(render(report, ZoneInfo(settings.playbook.timezone))))
    return 0


def _describe(rules: ReferralRules) -> str:
    on = ", ".join(f"crm.{k}" for k in rules.qualify_on) or "nothing"

    def side(role: str) -> str:
        r = rules.reward(role)
        parts = [f"{r.points} points"] * bool(r.points) + [f"{r.growth} growth"] * bool(r.growth)
        parts += [f"gift {r.gift}"] * bool(r.gift)
        return ", ".join(parts) or "nothing"

    cap = rules.referrer_per_month or "no cap"
    return (f"{rules.source}: converts on {on} within {rules.within_days} day(s); referrer earns {side('referrer')} "
            f"({cap} a month), friend earns {side('friend')}; burst flagged at {rules.burst.referrals} in "
            f"{rules.burst.within_hours} h")


async def _code(args: argparse.Namespace, settings: Settings, clock: Clock | None,
                wecom: ContactWayApi | None) -> int:
    from handlers.referral.codes import MintError, mint

    async with command_env(settings, clock) as env:
        own: Any = None if wecom is not None else wecom_client(env)
        try:
            minted = await mint(env.sessions, wecom or own, args.customer, env.clock.now())
        except MintError as exc:
            raise UserError(str(exc)) from None
        finally:
            if own is not None:
                await own.close()
    print(f"{minted.name} ({minted.external_userid})  code {minted.code}  state {minted.state}")
    print(f"qr_code {minted.qr_code}")
    print(f"config_id {minted.config_id}  managers {', '.join(minted.managers)}"
          + ("" if minted.created else "  (already minted)"))
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    s = sub.add_parser("referral", help="referral (老带新): codes, report, rules (sop/referral.yaml)")
    rsub = s.add_subparsers(dest="referral_command", required=True)
    c = rsub.add_parser("code", help="mint (or print again) a customer's referral code and QR code")
    c.add_argument("customer", help="the customer's external_userid")
    r = rsub.add_parser("report", help="funnel, leaderboard, super users by segment, flags")
    r.add_argument("--top", type=int, default=10, help="how many referrers the leaderboard lists (default 10)")
    rsub.add_parser("check", help="check sop/referral.yaml (file:line errors, exit 2)")
    s.set_defaults(func=cmd_referral)
