"""``scrm campaign validate|plan|report``: one-off campaigns (``sop/campaigns/``) from an ops
admin's chair. The command lives with the SOP engine because ``plan`` runs its planner (the
campaigns feature may not import the engine that imports it); the definitions, the audience and
the report are the campaigns feature's (``handlers.campaigns.api``).

* ``validate``: every campaign file against the playbook (``file:line: key: message``, exit 2);
* ``plan NAME``: who would get what, when, through which channel, with every policy skip and the
  holdout — the real planner on the database, in a transaction rolled back, nothing sent;
* ``report NAME [--by branch|team|manager] [--json]``: the funnel and the money.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from typing import Any

from scrm.cli_support import UserError, command_env, load_playbook_or_fail, report_problems
from scrm.kernel.clock import Clock
from scrm.kernel.config import Settings


def _validate(settings: Settings) -> int:
    from handlers.campaigns.api import check_campaigns, load_campaigns

    pb = load_playbook_or_fail(settings)
    issues = check_campaigns(settings.playbook.sop_dir, pb)
    if issues:
        return report_problems(issues, "sop/campaigns/")
    campaigns = load_campaigns(settings.playbook.sop_dir, pb)
    for c in campaigns:
        channels = ", ".join(f"{ch.key} {ch.kind} {ch.day} {ch.at:%H:%M} ({ch.material})" for ch in c.channels)
        split = ""
        if c.experiment is not None:
            e = c.experiment
            total = sum(v.weight for v in e.variants)
            arms = ", ".join(f"{v.name} {(100 - e.holdout) * v.weight / total:g}%" for v in e.variants)
            split = f"; experiment {e.name}: {arms}, holdout {e.holdout:g}%"
        print(f"{c.origin}: {c.name} {c.start}..{c.end}: {channels}; goal {c.goal.event} within "
              f"{c.goal.within_days} days{split}")
    print(f"ok: {len(campaigns)} campaign(s)")
    return 0


async def _plan(args: argparse.Namespace, settings: Settings, clock: Clock | None) -> int:
    from handlers.campaigns.api import CampaignBook, ExperimentBook, in_force, load_campaigns
    from handlers.sop.model import Planned
    from handlers.sop.planner import DayPlanner, DayState
    from scrm.playbook import PlaybookError

    pb = load_playbook_or_fail(settings)
    try:
        campaigns = {c.name: c for c in load_campaigns(settings.playbook.sop_dir, pb)}
    except PlaybookError as exc:
        raise UserError("sop/campaigns/ is invalid:\n" + "\n".join(str(i) for i in exc.errors)) from None
    c = campaigns.get(args.name)
    if c is None:
        raise UserError(f"no active campaign {args.name!r} in sop/campaigns/; known: {', '.join(sorted(campaigns))}")
    async with command_env(settings, clock) as env, env.sessions() as session:
        stored = await in_force(session)
        experiments = [e for e in stored.by_step.values() if e.source != c.source]
        book = ExperimentBook([*experiments, *([c.experiment] if c.experiment else [])])
        for day in sorted({ch.day for ch in c.channels}):
            sends: Counter[str] = Counter()
            skips: Counter[str] = Counter()
            listed: list[str] = []
            state = DayState(pb, day, experiments=book, campaigns=CampaignBook([c]))
            async for d in DayPlanner(pb, day, only_source=c.source, state=state).run(session):
                if isinstance(d, Planned) and d.kind == "moments":  # one post: its managers and audience
                    managers = len({m for _, m in d.audience})
                    sends[f"{d.at:%H:%M} {d.step} → moments {d.material} (asks {managers} managers to publish, "
                          f"for {len(d.audience)} customers)"] += 1
                    if args.customers:
                        listed += [f"    {d.at:%H:%M} {d.step} moments → {ext} via {m}" for ext, m in d.audience]
                elif isinstance(d, Planned):
                    sends[f"{d.at:%H:%M} {d.step} → {d.kind} {d.material}"] += 1
                    if args.customers:
                        listed.append(f"    {d.at:%H:%M} {d.step} {d.kind} {d.material} → {d.target} via {d.sender}")
                elif d.carry is not None:
                    sends[f"{d.carry.at:%H:%M} {d.step} → task {d.carry.material} (carried over)"] += 1
                else:
                    skips[d.reason.split(":")[0]] += 1
                    if args.customers:
                        listed.append(f"    {d.step} skipped {d.target}: {d.reason}")
            print(f"{day}: {sum(sends.values())} sends, {sum(skips.values())} skipped")
            print("\n".join([f"    {n:>7} × {k}" for k, n in sorted(sends.items())]
                            + [f"    skipped {n:>7} × {k}" for k, n in sorted(skips.items())] + listed))
        await session.rollback()
    return 0


async def _report(args: argparse.Namespace, settings: Settings, clock: Clock | None) -> int:
    from handlers.campaigns.api import UnknownCampaign, campaign_report, render

    async with command_env(settings, clock) as env, env.sessions() as session:
        try:
            report: dict[str, Any] = await campaign_report(session, args.name, env.clock.now(), by=args.by)
        except UnknownCampaign as exc:
            raise UserError(str(exc)) from None
    print(json.dumps(report, ensure_ascii=False, indent=2) if args.json else "\n".join(render(report)))
    return 0


async def cmd_campaign(args: argparse.Namespace, settings: Settings, *, clock: Clock | None = None) -> int:
    if args.campaign_command == "validate":
        return _validate(settings)
    if args.campaign_command == "plan":
        return await _plan(args, settings, clock)
    return await _report(args, settings, clock)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from handlers.campaigns.api import BY

    p = sub.add_parser("campaign", aliases=["campaigns"], help="one-off campaigns (sop/campaigns/)")
    s = p.add_subparsers(dest="campaign_command", required=True)
    s.add_parser("validate", help="check sop/campaigns/*.yaml (file:line errors, exit 2)")
    pl = s.add_parser("plan", help="who would get what, when, through which channel (nothing is sent)")
    pl.add_argument("name", help="the campaign's name (campaign: in its file)")
    pl.add_argument("--customers", action="store_true", help="list every customer's send or skip")
    r = s.add_parser("report", help="the funnel (targeted → reached → opened → converted → referred) and money")
    r.add_argument("name", help="the campaign's name")
    r.add_argument("--by", choices=BY, help="one row per branch, team or manager")
    r.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=cmd_campaign)
