"""``scrm experiments validate|report``.

``validate`` checks ``sop/experiments/*.yaml`` against the playbook (``file:line: key: message``,
exit 2) and prints each experiment's arms and planned sample; ``report NAME [--json]`` prints the
experiment's figures from the database (see :mod:`.report`).
"""

from __future__ import annotations

import argparse
import json

from scrm.cli_support import UserError, command_env, load_playbook_or_fail, report_problems
from scrm.kernel.clock import Clock
from scrm.kernel.config import Settings


async def cmd_experiments(args: argparse.Namespace, settings: Settings, *, clock: Clock | None = None) -> int:
    if args.experiments_command == "validate":
        return _validate(settings)
    from .report import UnknownExperiment, experiment_report, render

    async with command_env(settings, clock) as env, env.sessions() as session:
        try:
            report = await experiment_report(session, args.name, env.clock.now())
        except UnknownExperiment as exc:
            raise UserError(str(exc)) from None
    print(json.dumps(report, ensure_ascii=False, indent=2) if args.json else "\n".join(render(report)))
    return 0


def _validate(settings: Settings) -> int:
    from .experiments import HOLDOUT, check, load_experiments

    pb = load_playbook_or_fail(settings)
    issues = check(settings.playbook.sop_dir, pb)
    if issues:
        return report_problems(issues, "sop/experiments/")
    experiments = load_experiments(settings.playbook.sop_dir, pb)
    for e in experiments:
        total = sum(v.weight for v in e.variants)
        share = 100 - e.holdout
        arms = ", ".join(f"{v.name} {share * v.weight / total:g}% ({v.material or v.task or 'as written'})"
                         for v in e.variants)
        print(f"{e.origin}: {e.name} on {e.source}/{e.step}: {arms}, {HOLDOUT} {e.holdout:g}%; "
              f"goal {e.goal.event} within {e.goal.within_days} days; planned {e.planned_sample} per variant")
    print(f"ok: {len(experiments)} experiment(s)")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    s = sub.add_parser("experiments", aliases=["experiment"], help="A/B experiments on SOP steps (sop/experiments/)")
    ssub = s.add_subparsers(dest="experiments_command", required=True)
    ssub.add_parser("validate", help="check sop/experiments/*.yaml (file:line errors, exit 2)")
    r = ssub.add_parser("report", help="per variant: exposed, converted, rate and interval, lift, p-value, winner")
    r.add_argument("name", help="the experiment's name (experiment: in its file)")
    r.add_argument("--json", action="store_true", help="print the report as JSON")
    s.set_defaults(func=cmd_experiments)
