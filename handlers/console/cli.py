"""``scrm console hash-password`` (the local admin's argon2 hash for the configuration) and
``scrm console check`` (the access file, ``file:line: key: message`` per problem)."""

from __future__ import annotations

import argparse
import getpass
import sys

from handlers.console.access import load_access
from handlers.console.holder import access_path
from scrm.kernel.config import Settings


def _hash_password(_args: argparse.Namespace, _settings: Settings) -> int:
    from handlers.console.signin import hash_password

    if sys.stdin.isatty():
        password = getpass.getpass("password for the local admin: ")
        if getpass.getpass("again: ") != password:
            print("error: the two passwords differ", file=sys.stderr)
            return 2
    else:
        password = sys.stdin.readline().rstrip("\n")
    if len(password) < 12:
        print("error: use at least 12 characters for the break-glass password", file=sys.stderr)
        return 2
    print(hash_password(password))
    print("put it in [console] admin_password_hash (or SCRM_CONSOLE__ADMIN_PASSWORD_HASH)", file=sys.stderr)
    return 0


def _check(_args: argparse.Namespace, settings: Settings) -> int:
    path = access_path(settings)
    access = load_access(path)
    for issue in access.errors:
        print(issue, file=sys.stderr)
    if access.errors:
        return 2
    if not path.exists():
        print(f"{path}: no access file; only the local admin can sign in")
        return 0
    by_role: dict[str, int] = {}
    for grant in access.grants.values():
        by_role[grant.role.value] = by_role.get(grant.role.value, 0) + 1
    print(f"{path}: {len(access.grants)} member(s): " + ", ".join(f"{n} {r}" for r, n in sorted(by_role.items())))
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from handlers.console.report import register as register_report

    register_report(sub)
    c = sub.add_parser("console", help="the operations console: access file, local admin")
    csub = c.add_subparsers(dest="console_command", required=True)
    csub.add_parser("hash-password", help="read a password (prompt or stdin), print its argon2 hash")
    csub.add_parser("check", help="check the console access file (sop/console.yaml)")
    c.set_defaults(func=cmd_console)


def cmd_console(args: argparse.Namespace, settings: Settings) -> int:
    if args.console_command == "hash-password":
        return _hash_password(args, settings)
    return _check(args, settings)
