"""``scrm channels sync|list``: the contact QR channels of sop/channels.yaml in WeCom.

``sync`` talks to WeCom directly (it needs config ids and QR codes back) and prints one line per
channel; it exits 1 when any line is an error, after doing everything else it could.
"""

from __future__ import annotations

import argparse

from scrm.cli_support import command_env, load_playbook_or_fail, print_sync_results, wecom_client
from scrm.kernel.clock import Clock
from scrm.kernel.config import Settings
from scrm.playbook import Playbook

# ------------------------------------------------------------------------------ channels


async def cmd_channels(args: argparse.Namespace, settings: Settings, *, clock: Clock | None = None) -> int:
    from handlers.contacts.channels import list_channels, sync_channels
    from scrm.cli_support import UserError

    async with command_env(settings, clock) as env:
        if args.channels_command == "sync":
            book = load_playbook_or_fail(settings)
            wecom = wecom_client(env)
            try:
                results = await sync_channels(env.sessions, wecom, book, env.clock, settings.playbook.materials_dir)
            finally:
                await wecom.close()
            return print_sync_results(results, "key")
        playbook: Playbook | None
        try:
            playbook = load_playbook_or_fail(settings)
        except UserError:
            playbook = None  # listing what the database holds still helps while the YAML is broken
        async with env.sessions() as session:
            rows = await list_channels(session, playbook)
        print(f"{'key':<30} {'name':<16} {'status':<12} {'added':>5} {'lost':>5}  qr_code")
        for row in rows:
            print(f"{row.key:<30} {row.name:<16} {row.status:<12} {row.added:>5} {row.churned:>5}  {row.qr_code}")
        if not rows:
            print("(no channels)")
        return 0



# ------------------------------------------------------------------------------ parser


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    c = sub.add_parser("channels", help="contact QR channels (sop/channels.yaml)")
    csub = c.add_subparsers(dest="channels_command", required=True)
    csub.add_parser("sync", help="create missing tags and create/update every channel's contact way in WeCom")
    csub.add_parser("list", help="channels with their QR codes, added and lost customers")
    c.set_defaults(func=cmd_channels)
