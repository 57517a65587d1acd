"""``scrm console hash-password`` (the local admin's argon2 hash for the configuration),
``scrm console check`` (the access file, ``file:line: key: message`` per problem) and
``scrm console bi-token NAME [--scope PATH]`` (a fresh token for the BI API, and its line for
``[console] bi_tokens``)."""

from __future__ import annotations

import argparse
import getpass
import json
import re
import sys

from handlers.console.access import load_access
from handlers.console.holder import access_path
from handlers.console.settings import console_settings
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


def _bi_token(args: argparse.Namespace, settings: Settings) -> int:
    """Print a fresh token once (stdout, alone, for a script) and the configuration line for it
    (stderr): only the line's hash is kept, so the token cannot be shown again."""
    from handlers.console.bi import new_token, token_hash
    from scrm.cli_support import UserError

    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,32}", args.token_name):
        raise UserError("the token's name: 1 to 32 letters, digits, '_', '.' or '-' (it is audited as bi:NAME)")
    scope = (args.scope or "").strip().strip("/")
    if args.scope is not None and not scope:
        raise UserError("--scope needs a department path such as 分行/支行")
    taken = {t.name for t in console_settings(settings).bi_tokens}
    if args.token_name in taken:
        raise UserError(f"a BI token named {args.token_name!r} is already configured; pick another name")
    token = new_token()
    entry = {"name": args.token_name, "sha256": token_hash(token), **({"scope": scope} if scope else {})}
    # TOML inline table; json.dumps quotes the values as TOML basic strings.
    line = "{" + ", ".join(f"{k} = {json.dumps(v, ensure_ascii=False)}" for k, v in entry.items()) + "}"
    print(token)
    print("give the token above to the BI (it is shown only now); add this to [console] bi_tokens = [ … ]:",
          file=sys.stderr)
    print("  " + line + ",", file=sys.stderr)
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from handlers.console.report import register as register_report

    register_report(sub)
    c = sub.add_parser("console", help="the operations console: access file, local admin, BI tokens")
    csub = c.add_subparsers(dest="console_command", required=True)
    csub.add_parser("hash-password", help="read a password (prompt or stdin), print its argon2 hash")
    csub.add_parser("check", help="check the console access file (sop/console.yaml)")
    bi = csub.add_parser("bi-token", help="print a fresh token for the BI API and its [console] bi_tokens line")
    bi.add_argument("token_name", metavar="NAME", help="who uses it (audited as bi:NAME)")
    bi.add_argument("--scope", help="only this department path (分行/支行/团队); default the whole bank")
    c.set_defaults(func=cmd_console)


def cmd_console(args: argparse.Namespace, settings: Settings) -> int:
    if args.console_command == "hash-password":
        return _hash_password(args, settings)
    if args.console_command == "bi-token":
        return _bi_token(args, settings)
    return _check(args, settings)
