"""The ``scrm`` command: serve, db, inbox, outbox, config, sop, ...

Each sub-command is a small function; errors a person can fix (bad config, bad YAML, unknown
ids, an unreachable or unmigrated database, a busy port) print one clear message to stderr and
exit 2, never a traceback. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from scrm.adapters.db.engine import DatabaseNotReady, describe_db_error, sqlite_must_exist
from scrm.cli_support import UserError, database, latest_rows
from scrm.kernel.config import ConfigError, Settings, masked_dump
from scrm.kernel.models import InboxEvent

Command = Callable[[argparse.Namespace, Settings], Awaitable[int] | int]


def _print_json(data: Any) -> None:
    print(json.dumps(data, ensure_ascii=False, indent=2, default=str))


# ------------------------------------------------------------------------------------ serve
def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from scrm.serve import serve

    if args.existing and not args.sandbox:
        raise UserError("--existing seeds the sandbox's corp: use it with --sandbox")
    if args.existing < 0:
        raise UserError(f"--existing must be 0 or more, not {args.existing}")
    serve(settings, sandbox=args.sandbox, demo=not args.no_demo, existing=args.existing)
    return 0


# ------------------------------------------------------------------------------------ db
def cmd_db(args: argparse.Namespace, settings: Settings) -> int:
    from scrm.adapters.db import migrate

    if args.db_command == "upgrade":
        migrate.upgrade(settings.database.url, args.revision)
        print(f"database upgraded to {args.revision}")
    else:
        for line in migrate.current(settings.database.url):
            print(line)
    return 0


# ------------------------------------------------------------------------------------ inbox
async def cmd_inbox(args: argparse.Namespace, settings: Settings) -> int:
    from scrm.kernel.clock import SystemClock
    from scrm.kernel.inbox import Inbox, summarize

    async with database(settings) as (engine, sessions):
        if args.inbox_command == "list":
            rows = await latest_rows(sessions, InboxEvent, args.status, args.limit)
            for row in rows:
                info = summarize(row)
                err = f"  {info['last_error'][:80]}" if info["last_error"] else ""
                print(f"{info['id']:>8}  {info['status']:<7} {info['attempts']:>2}  {info['received_at'][:19]}  "
                      f"{info['type']}{err}")
            if not rows:
                print("(no events)")
        elif args.inbox_command == "show":
            async with sessions() as s:
                event = await s.get(InboxEvent, args.id)
            if event is None:
                raise UserError(f"no inbox event {args.id}")
            info = summarize(event)
            # Internal events are JSON: show them as data, not as an escaped string.
            info["raw"] = event.raw if event.source == "wecom" else json.loads(event.raw)
            _print_json(info)
        elif args.inbox_command == "replay":
            inbox = Inbox(engine, sessions, settings.inbox, SystemClock())
            if not args.ids and not args.all_dead:
                raise UserError("name event ids or use --all-dead")
            n = await inbox.replay(args.ids or None, dead_only=not args.force)
            print(f"{n} event(s) queued again; a running service picks them up within a second")
        else:  # stats
            inbox = Inbox(engine, sessions, settings.inbox, SystemClock())
            _print_json(await inbox.counts())
    return 0


# ------------------------------------------------------------------------------------ config
def cmd_config(args: argparse.Namespace, settings: Settings) -> int:
    _print_json(masked_dump(settings))
    return 0


# ------------------------------------------------------------------------------------ parser
EXTRA_COMMANDS: list[Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], None]] = []


CONFIG_HELP = "TOML config file (default: $SCRM_CONFIG or ./scrm.toml)"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="scrm", description="WeCom SCRM service for retail banks")
    p.add_argument("--config", "-c", help=CONFIG_HELP)
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("serve", help="run the service (callback server + workers)")
    s.add_argument("--sandbox", action="store_true",
                   help="run against the built-in WeCom sandbox with demo data (no credentials needed)")
    s.add_argument("--no-demo", action="store_true", help="with --sandbox: no scripted customer actions")
    s.add_argument("--existing", type=int, default=0, metavar="N",
                   help="with --sandbox: the corp already has N more customer relations (backfilled on start)")
    s.set_defaults(func=cmd_serve, creates_database=True)

    d = sub.add_parser("db", help="database migrations")
    dsub = d.add_subparsers(dest="db_command", required=True)
    up = dsub.add_parser("upgrade", help="apply migrations")
    up.add_argument("revision", nargs="?", default="heads")
    up.set_defaults(creates_database=True)
    dsub.add_parser("current", help="show the applied revision")
    d.set_defaults(func=cmd_db)

    i = sub.add_parser("inbox", help="inspect and replay inbound events")
    isub = i.add_subparsers(dest="inbox_command", required=True)
    il = isub.add_parser("list", help="latest events")
    il.add_argument("--status", choices=["pending", "done", "dead"])
    il.add_argument("--limit", type=int, default=50)
    ish = isub.add_parser("show", help="one event with its raw payload")
    ish.add_argument("id", type=int)
    ir = isub.add_parser("replay", help="feed dead (or, with --force, any) events to the handlers again")
    ir.add_argument("ids", type=int, nargs="*")
    ir.add_argument("--all-dead", action="store_true")
    ir.add_argument("--force", action="store_true", help="also replay events that are not dead")
    isub.add_parser("stats", help="counts per status")
    i.set_defaults(func=cmd_inbox)

    c = sub.add_parser("config", help="configuration")
    csub = c.add_subparsers(dest="config_command", required=True)
    csub.add_parser("show", help="effective configuration, secrets masked")
    c.set_defaults(func=cmd_config)

    for register in EXTRA_COMMANDS:
        register(sub)
    _config_option_everywhere(p)
    return p


def _config_option_everywhere(parser: argparse.ArgumentParser) -> None:
    """Accept ``--config`` after the sub-command too (``scrm serve -c FILE``), as people type it.

    SUPPRESS: a sub-command that was not given it leaves the top-level value alone.
    """
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                free = [o for o in ("--config", "-c") if o not in child._option_string_actions]
                if free:  # a sub-command may have claimed -c for itself: it keeps it
                    child.add_argument(*free, dest="config", default=argparse.SUPPRESS, help=CONFIG_HELP)
                _config_option_everywhere(child)


def main(argv: Sequence[str] | None = None) -> int:
    _register_extras()
    parser = build_parser()
    args = parser.parse_args(argv)
    settings: Settings | None = None
    try:
        from scrm.main import load_settings as load_composed_settings

        settings = load_composed_settings(args.config)
        # Only `serve` and `db upgrade` may create an SQLite file; the rest need a migrated one.
        with contextlib.nullcontext() if getattr(args, "creates_database", False) else sqlite_must_exist():
            result = args.func(args, settings)
            if asyncio.iscoroutine(result):
                result = asyncio.run(result)
        return int(result or 0)
    except (ConfigError, UserError, DatabaseNotReady) as exc:
        return _fail(str(exc).splitlines())
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        lines = _explain(exc, settings)
        if lines is None:
            raise  # a bug: the traceback is what a developer needs
        return _fail(lines)


def _fail(lines: list[str]) -> int:
    for line in lines:
        print(f"scrm: {line}", file=sys.stderr)
    return 2


def _explain(exc: Exception, settings: Settings | None) -> list[str] | None:
    """The lines that say what is wrong, for exceptions an operator's mistake causes; else None."""
    from scrm.playbook import PlaybookError
    from scrm.playbook.holder import PlaybookLoadError

    if isinstance(exc, PlaybookError):
        return [str(issue) for issue in exc.errors]
    if isinstance(exc, PlaybookLoadError):  # the service's wrapper of the same list
        return str(exc).splitlines()
    if settings is not None:
        problem = describe_db_error(exc, settings.database.url)
        if problem is not None:
            return [problem]
    return None


def _register_extras() -> None:
    """Sub-commands of the kernel's outbox tools and of every composed feature."""
    if EXTRA_COMMANDS:
        return
    from scrm import cli_ops
    from scrm.cli_support import PLAYBOOK_CHECKS
    from scrm.main import FEATURES

    EXTRA_COMMANDS.append(cli_ops.register)
    EXTRA_COMMANDS.extend(f.cli for f in FEATURES if f.cli is not None)
    PLAYBOOK_CHECKS.extend(f.check for f in FEATURES if f.check is not None)


if __name__ == "__main__":
    sys.exit(main())
