"""Operator sub-commands beyond the spine: ``scrm outbox ...``."""

from __future__ import annotations

import argparse
import json
from typing import Any

from sqlalchemy import select

from scrm.clock import SystemClock
from scrm.config import Settings
from scrm.db.engine import make_engine, make_sessionmaker
from scrm.db.models import OutboxAction
from scrm.outbox import Outbox, summarize


async def cmd_outbox(args: argparse.Namespace, settings: Settings) -> int:
    from scrm.cli import UserError

    engine = make_engine(settings.database.url)
    sessions = make_sessionmaker(engine)
    outbox = Outbox(engine, sessions, settings.outbox, SystemClock(), wecom=None)
    try:
        if args.outbox_command == "list":
            async with sessions() as s:
                stmt = select(OutboxAction).order_by(OutboxAction.id.desc()).limit(args.limit)
                if args.status:
                    stmt = stmt.where(OutboxAction.status == args.status)
                rows = (await s.scalars(stmt)).all()
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
    finally:
        await engine.dispose()
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
