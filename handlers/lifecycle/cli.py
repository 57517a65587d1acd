"""``scrm segments check|matrix|run``.

``check`` reads ``sop/segments.yaml`` and ``sop/lifecycle.yaml`` (``file:line: key: message``,
exit 2) and prints what they define; ``matrix`` prints the behaviour matrix (segments × stages,
customers per cell, the path SOPs serving it, ``!`` on a cell with customers and no SOP);
``run`` asks the running service for a scoring run now (the nightly job's work).
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from scrm.cli_support import command_env, load_playbook_or_fail, report_problems
from scrm.kernel.clock import Clock
from scrm.kernel.config import Settings

if TYPE_CHECKING:
    from handlers.lifecycle.rules import Lifecycle, Segmentation


async def cmd_segments(args: argparse.Namespace, settings: Settings, *, clock: Clock | None = None) -> int:
    if args.segments_command == "check":
        return _check(settings)
    rules = _rules_or_exit(settings)
    if rules is None:
        return 2
    seg, lc = rules
    async with command_env(settings, clock) as env:
        if args.segments_command == "run":
            from handlers.lifecycle.events import LifecycleNightly
            from scrm.kernel.inbox import Inbox

            inbox = Inbox(env.engine, env.sessions, env.settings.inbox, env.clock)
            now = env.clock.now()
            async with env.sessions() as session, session.begin():
                await inbox.add_internal(session, LifecycleNightly(at=now), f"nightly:cli:{now.isoformat()}")
            print("scoring queued: the service recomputes tiers, segments, grades and stages")
            return 0
        from handlers.lifecycle.matrix import build, render

        pb = load_playbook_or_fail(settings)
        async with env.sessions() as session:
            matrix = await build(session, seg, lc, pb)
    print("\n".join(render(matrix)))
    return 0


def _rules_or_exit(settings: Settings) -> tuple[Segmentation, Lifecycle] | None:
    from handlers.lifecycle.rules import load_lifecycle, load_segmentation
    from scrm.playbook.issues import PlaybookError

    try:
        return load_segmentation(settings.playbook.sop_dir), load_lifecycle(settings.playbook.sop_dir)
    except PlaybookError as exc:
        report_problems(exc.errors, "the segmentation rules")
        return None


def problems(settings: Settings) -> list[str]:
    """Every problem of sop/segments.yaml and sop/lifecycle.yaml, one ``file:line: key: message``
    each (``scrm sop validate`` prints them with the playbook's)."""
    from handlers.lifecycle.rules import check

    return [str(issue) for issue in check(settings.playbook.sop_dir)]


def _check(settings: Settings) -> int:
    from handlers.lifecycle.rules import check, load_lifecycle, load_segmentation

    issues = check(settings.playbook.sop_dir)
    if issues:
        return report_problems(issues, "the segmentation rules")
    seg, lc = load_segmentation(settings.playbook.sop_dir), load_lifecycle(settings.playbook.sop_dir)
    print(f"{seg.source}: {len(seg.tiers)} tier(s), {len(seg.segments)} segment(s), {len(seg.factors)} grade "
          f"factor(s), {len(seg.grades)} grade(s), RFM {'on' if seg.rfm else 'off'}")
    for t in seg.tiers:
        print(f"  tier {t.name} ({t.label}) from {t.floor:,.0f}")
    print(f"{lc.source}: {len(lc.stages)} stage(s), min stay {lc.min_stay_days} day(s), "
          f"hysteresis {lc.hysteresis:g}")
    for s in lc.stages:
        print(f"  stage {s.name} ({s.label}){' churn_risk' if s.churn_risk else ''}")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    s = sub.add_parser("segments", help="三分 segmentation and lifecycle stages (sop/segments.yaml, lifecycle.yaml)")
    ssub = s.add_subparsers(dest="segments_command", required=True)
    ssub.add_parser("check", help="check sop/segments.yaml and sop/lifecycle.yaml (file:line errors, exit 2)")
    ssub.add_parser("matrix", help="segments × stages: customers per cell and the SOPs serving it")
    ssub.add_parser("run", help="ask the service to score every customer now (the nightly job's work)")
    s.set_defaults(func=cmd_segments)
