"""The contacts feature as the service composes it."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from handlers.contacts.channels import sync_channels
from handlers.contacts.cli import register as register_cli
from handlers.contacts.events import EVENTS
from handlers.contacts.missed import welcome_missed_hook
from handlers.contacts.welcome import SEND_WELCOME, install_welcome_media
from scrm.kernel.feature import Feature

from . import models
from .handlers import router

if TYPE_CHECKING:
    from scrm.kernel.service import Runtime

log = logging.getLogger("scrm.sandbox.runner")


async def _sandbox(runtime: Runtime) -> None:
    """Create the playbook's channel QR codes in the sandbox tenant, as `scrm channels sync`
    would against WeCom."""
    playbook = runtime.playbook.current
    if playbook is None:
        return
    results = await sync_channels(runtime.sessions, runtime.wecom, playbook, runtime.clock,
                                  runtime.settings.playbook.materials_dir)
    for r in results:
        log.log(logging.WARNING if r.action == "error" else logging.INFO,
                "sandbox: channel %s %s %s", r.key, r.action, r.message)


def _outbox(runtime: Runtime) -> None:
    # Welcomes carry their media ids' sources: a 40007 re-uploads and resends in the window.
    install_welcome_media(runtime.outbox, runtime.settings.playbook.materials_dir)
    # A welcome that missed its window anyway: its manager greets the customer by hand.
    runtime.outbox.failure_hooks[SEND_WELCOME] = welcome_missed_hook(runtime.settings,
                                                                     lambda: runtime.playbook.current)


FEATURE = Feature(name="contacts", router=router, models=models, requires=("compliance", "radar", "tags", "timeline"),
                  events=EVENTS, outbox=_outbox, cli=register_cli, sandbox=_sandbox)
