"""CRM sub-commands: ``scrm crm import FILE...`` and ``scrm sync tags [--dry-run]``.

``import`` streams each file into the database (bad rows printed as ``file:line: message``,
exit 1 if any; good rows kept). ``sync tags`` plans every relation's CRM-owned tag diff and
queues the ``mark_tag`` calls in the outbox for the running service to send (rate-limited);
``--dry-run`` only prints the plan with counts.
"""

from __future__ import annotations

import argparse
from datetime import datetime
from pathlib import Path
from typing import Any

from scrm.config import Settings


def register(sub: Any) -> None:
    crm = sub.add_parser("crm", help="CRM integration")
    crm_sub = crm.add_subparsers(dest="crm_command", required=True)
    imp = crm_sub.add_parser("import", help="import CSV/JSONL files of customers or key events")
    imp.add_argument("files", nargs="+", type=Path)
    imp.add_argument("--kind", choices=("auto", "customers", "events"), default="auto")
    imp.set_defaults(func=_import)
    sync = sub.add_parser("sync", help="synchronise with WeCom")
    sync_sub = sync.add_subparsers(dest="sync_command", required=True)
    tags = sync_sub.add_parser("tags", help="sync CRM-owned customer tags")
    tags.add_argument("--dry-run", action="store_true", help="print the planned diff only")
    tags.set_defaults(func=_sync_tags)


async def _import(args: argparse.Namespace, settings: Settings) -> int:
    from scrm.clock import SystemClock
    from scrm.crm.importer import FileFormatError, import_file
    from scrm.crm.progress import Progress
    from scrm.db.engine import make_engine, make_sessionmaker
    from scrm.inbox import Inbox

    engine = make_engine(settings.database.url)
    clock = SystemClock()
    failed = False
    try:
        sessions = make_sessionmaker(engine)
        inbox = Inbox(engine, sessions, settings.inbox, clock)
        for path in args.files:
            try:
                report = await import_file(path, sessions, inbox, clock, kind=args.kind,
                                           progress=Progress(f"import {path.name}", path.stat().st_size))
            except (OSError, FileFormatError) as exc:
                print(f"scrm: {exc}")
                failed = True
                continue
            for line in report.errors:
                print(line)
            print(f"{path}: {report.rows} rows, {report.stored} stored, {report.changed} customers changed, "
                  f"{report.new_events} new events, {len(report.errors)} errors")
            failed |= bool(report.errors)
    finally:
        await engine.dispose()
    return 1 if failed else 0


async def _sync_tags(args: argparse.Namespace, settings: Settings) -> int:
    from scrm.cli_lifecycle import load_playbook_or_fail
    from scrm.clock import SystemClock
    from scrm.crm.progress import Progress
    from scrm.crm.runner import run_sync
    from scrm.db.engine import make_engine, make_sessionmaker
    from scrm.outbox import Outbox
    from scrm.wecom.api import WeComClient
    from scrm.wecom.token import DbTokenStore

    playbook = load_playbook_or_fail(settings)
    engine = make_engine(settings.database.url)
    clock = SystemClock()
    sessions = make_sessionmaker(engine)
    wecom = None if args.dry_run else WeComClient(settings.wecom, token_store=DbTokenStore(sessions, clock),
                                                  clock=clock)
    try:
        outbox = Outbox(engine, sessions, settings.outbox, clock, wecom)
        generation = "cli" + datetime.now().strftime("%Y%m%d")
        report, index = await run_sync(sessions, outbox, wecom, playbook.tag_groups, clock, generation,
                                       dry_run=args.dry_run, chunk=settings.crm.sync_chunk,
                                       progress=Progress("sync tags"))
    finally:
        if wecom is not None:
            await wecom.close()
        await engine.dispose()
    verb = "would queue" if args.dry_run else "queued"
    print(f"{report.scanned} relations checked, {report.changed} to change: {verb} {report.calls} mark_tag calls")
    for name, n in sorted(report.added.items()):
        print(f"  + {name}: {n}")
    for name, n in sorted(report.removed.items()):
        print(f"  - {name}: {n}")
    for name in index.missing:
        print(f"  ! {name}: not in WeCom yet (created on a real run)")
    return 0
