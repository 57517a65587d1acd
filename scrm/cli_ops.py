"""Operator sub-commands beyond the spine: ``scrm outbox ...``."""

from __future__ import annotations

import argparse
import json
from typing import Any

from scrm.kernel.clock import SystemClock
from scrm.kernel.config import Settings
from scrm.kernel.models import OutboxAction
from scrm.kernel.outbox import Outbox, summarize


async def cmd_outbox(args: argparse.Namespace, settings: Settings) -> int:
    from scrm.cli_support import UserError, database, latest_rows

    async with database(settings) as (engine, sessions):
        outbox = Outbox(engine, sessions, settings.outbox, SystemClock(), wecom=None)
        if args.outbox_command == "list":
            rows = await latest_rows(sessions, OutboxAction, args.status, args.limit)
            for row in rows:
                info = summarize(row)
                err = f"  {str(info['last_error'])[:70]}" if info["last_error"] else ""
                print(f"{info['id']:>8}  {info['status']:<9} {info['attempts']:>2}  {info['api'] or info['kind']:<40} "
                      f"{info['key'][:50]}{err}")
            if not rows:
                print("(no actions)")
        elif args.outbox_command == "show":
            async with sessions() as s:
                action = await s.get(OutboxAction, args.id)
            if action is None:
                raise UserError(f"no outbox action {args.id}")
            data: dict[str, Any] = summarize(action)
            data.update(payload=action.payload, result=action.result)
            print(json.dumps(data, ensure_ascii=False, indent=2, default=str))
        elif args.outbox_command == "retry":
            n = await outbox.retry(args.ids)
            print(f"{n} action(s) queued again (only failed or unknown actions can be retried)")
        elif args.outbox_command == "cancel":
            n = await outbox.cancel(args.ids)
            print(f"{n} action(s) cancelled")
        else:
            print(json.dumps(await outbox.counts(), indent=2))
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    o = sub.add_parser("outbox", help="inspect, retry and cancel outbound actions")
    osub = o.add_subparsers(dest="outbox_command", required=True)
    ol = osub.add_parser("list", help="latest actions")
    ol.add_argument("--status", choices=["pending", "sending", "sent", "failed", "unknown", "cancelled"])
    ol.add_argument("--limit", type=int, default=50)
    osh = osub.add_parser("show", help="one action with payload and result")
    osh.add_argument("id", type=int)
    ore = osub.add_parser("retry", help="send failed/unknown actions again (after checking WeCom)")
    ore.add_argument("ids", type=int, nargs="+")
    oc = osub.add_parser("cancel", help="never send these actions")
    oc.add_argument("ids", type=int, nargs="+")
    osub.add_parser("stats", help="counts per status")
    o.set_defaults(func=cmd_outbox)
