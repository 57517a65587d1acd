"""CRM sub-commands: ``scrm crm import FILE...`` and ``scrm sync tags [--dry-run]``.

``import`` streams each file into the database (bad rows printed as ``file:line: message``,
exit 1 if any; good rows kept); ``--encoding gbk`` (or gb18030) reads a Chinese bank's Excel
export, the default is UTF-8 with or without a byte-order mark. ``sync tags`` plans every
relation's CRM-owned tag diff and queues the ``mark_tag`` calls in the outbox for the running
service to send (rate-limited), never more than about two minutes of calls ahead of it
(:mod:`handlers.crm.backlog`): a big run lasts as long as the sending does, with its progress
shown, and an interrupted run is resumed by running it again. ``--dry-run`` only prints the
plan with counts.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from handlers.crm.settings import crm_settings
from scrm.kernel.clock import Clock, SystemClock
from scrm.kernel.config import Settings


def register(sub: Any) -> None:
    crm = sub.add_parser("crm", help="CRM integration")
    crm_sub = crm.add_subparsers(dest="crm_command", required=True)
    imp = crm_sub.add_parser("import", help="import CSV/JSONL files of customers or key events")
    imp.add_argument("files", nargs="+", type=Path)
    imp.add_argument("--kind", choices=("auto", "customers", "events", "groups"), default="auto")
    imp.add_argument("--encoding",
                     help="text encoding of the files: utf-8 (default, byte-order mark or not), gbk, gb18030")
    imp.set_defaults(func=_import)
    sync = sub.add_parser("sync", help="synchronise with WeCom")
    sync_sub = sync.add_subparsers(dest="sync_command", required=True)
    tags = sync_sub.add_parser("tags", help="sync CRM-owned customer tags")
    tags.add_argument("--dry-run", action="store_true", help="print the planned diff only")
    tags.set_defaults(func=_sync_tags)


def _encoding(name: str | None) -> str:
    """The codec to read the files with; a name we cannot use is the user's to fix (exit 2)."""
    from handlers.crm.importer import DEFAULT_ENCODING, check_encoding
    from scrm.cli_support import UserError

    try:
        return check_encoding(DEFAULT_ENCODING if name is None else name)
    except ValueError as exc:
        raise UserError(str(exc)) from None


async def _import(args: argparse.Namespace, settings: Settings, *, clock: Clock | None = None) -> int:
    from handlers.crm.importer import FileFormatError, import_file
    from scrm.adapters.db.engine import make_engine, make_sessionmaker
    from scrm.kernel.inbox import Inbox
    from scrm.kernel.progress import Progress

    encoding = _encoding(args.encoding)  # before touching the database or any file
    engine = make_engine(settings.database.url)
    clock = clock or SystemClock()
    failed = False
    try:
        sessions = make_sessionmaker(engine)
        inbox = Inbox(engine, sessions, settings.inbox, clock)
        for path in args.files:
            try:
                # Error lines print as they are found: a file of bad rows never fills memory.
                report = await import_file(path, sessions, inbox, clock, kind=args.kind, name=str(path),
                                           on_error=print, encoding=encoding, tiers=crm_settings(settings).tiers,
                                           progress=Progress(f"import {path.name}", path.stat().st_size))
            except (OSError, FileFormatError) as exc:
                print(f"scrm: {exc}")
                failed = True
                continue
            print(report.summary())
            failed |= report.error_count > 0
    finally:
        await engine.dispose()
    return 1 if failed else 0


async def _sync_tags(args: argparse.Namespace, settings: Settings, *, clock: Clock | None = None) -> int:
    from handlers.crm.backlog import queue_cap
    from handlers.crm.runner import run_sync
    from scrm.adapters.db.engine import make_engine, make_sessionmaker
    from scrm.adapters.wecom.api import WeComClient
    from scrm.adapters.wecom.token import DbTokenStore
    from scrm.cli_support import load_playbook_or_fail
    from scrm.kernel.outbox import Outbox
    from scrm.kernel.progress import Progress

    playbook = load_playbook_or_fail(settings)
    engine = make_engine(settings.database.url)
    clock = clock or SystemClock()
    sessions = make_sessionmaker(engine)
    wecom = None if args.dry_run else WeComClient(settings.wecom, token_store=DbTokenStore(sessions, clock),
                                                  clock=clock)
    try:
        outbox = Outbox(engine, sessions, settings.outbox, clock, wecom)
        # A generation per run: an interrupted run is resumed by running again (finished relations
        # plan nothing), and a later run may repeat an earlier call after drift (a manager removed
        # a CRM tag by hand); a per-day key would swallow that as a duplicate.
        generation = "cli" + clock.now().strftime("%Y%m%dT%H%M%S")
        report, index = await run_sync(sessions, outbox, wecom, playbook.tag_groups, clock, generation,
                                       dry_run=args.dry_run, chunk=crm_settings(settings).sync_chunk,
                                       progress=Progress("sync tags"),
                                       max_queued=queue_cap(settings.wecom, crm_settings(settings).sync_chunk))
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
