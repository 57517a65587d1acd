"""``scrm backfill [--again] [--status]``: adopt the corp's existing members, customers, follow
relations with tags, groups, tag library and contact ways (see :mod:`handlers.backfill.runner`).

Resumable: after an error or a crash the same command goes on from the last page written. A
WeCom error is one line (exit 2) saying where it stopped.
"""

from __future__ import annotations

import argparse
import sys

from scrm.cli_support import Env, UserError, command_env, load_playbook_or_fail, wecom_client
from scrm.kernel.clock import Clock
from scrm.kernel.config import Settings


async def cmd_backfill(args: argparse.Namespace, settings: Settings, *, clock: Clock | None = None) -> int:
    async with command_env(settings, clock) as env:
        if args.status:
            return await _status(env)
        return await _run(env, again=args.again)


async def _run(env: Env, *, again: bool) -> int:
    from handlers.backfill.context import Context, PageDone
    from handlers.backfill.progress import LeaseLost, owner_id
    from handlers.backfill.runner import run_backfill
    from handlers.backfill.settings import backfill_settings
    from scrm.adapters.wecom.errors import WeComClientError
    from scrm.kernel.inbox import Inbox
    from scrm.kernel.progress import Progress

    playbook = load_playbook_or_fail(env.settings)
    shown: dict[str, Progress] = {}

    def on_page(done: PageDone) -> None:
        bar = shown.setdefault(done.stage, Progress(f"backfill {done.stage}", every_s=1.0))
        bar.update(done.pages, f"{done.pages:,} page(s)")

    wecom = wecom_client(env)
    ctx = Context(sessions=env.sessions, wecom=wecom, clock=env.clock,
                  inbox=Inbox(env.engine, env.sessions, env.settings.inbox, env.clock),
                  corp_id=env.settings.wecom.corp_id, owner=owner_id(), playbook=playbook,
                  lease_s=backfill_settings(env.settings).lease_s, on_page=on_page)
    try:
        outcome = await run_backfill(ctx, trigger="cli", again=again)
    except WeComClientError as exc:
        raise UserError(f"backfill stopped by WeCom: {exc}; run `scrm backfill` again to go on from "
                        "where it stopped") from None
    except LeaseLost as exc:
        raise UserError(str(exc)) from None
    finally:
        await wecom.close()
    if not outcome.ran:
        print(outcome.reason, file=sys.stderr)
        if outcome.stages and all(s.status == "done" for s in outcome.stages):
            return 0
        raise UserError(outcome.reason)
    for line in outcome.stages:
        print(line.line())
    print(f"backfill of corp {ctx.corp_id} done")
    return 0


async def _status(env: Env) -> int:
    from handlers.backfill import progress
    from handlers.backfill.runner import StageLine

    corp_id = env.settings.wecom.corp_id
    async with env.sessions() as session:
        run = await progress.run_of(session, corp_id)
        rows = await progress.stages(session, corp_id)
    if run is None:
        print(f"corp {corp_id}: never backfilled (run `scrm backfill`)")
        return 0
    state = run.status + (f", finished {run.finished_at:%Y-%m-%d %H:%M} UTC" if run.finished_at else "")
    print(f"corp {corp_id}: {state}" + (f" (last error: {run.last_error})" if run.last_error else ""))
    for row in rows:
        print(StageLine.of(row).line())
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    b = sub.add_parser("backfill", help="adopt the corp's existing customers, relations, tags, groups, contact ways")
    b.add_argument("--again", action="store_true", help="run a finished backfill once more (idempotent)")
    b.add_argument("--status", action="store_true", help="where each stage stands; changes nothing")
    b.set_defaults(func=cmd_backfill)
