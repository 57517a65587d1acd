"""The contacts feature as the service composes it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from scrm.cli_lifecycle import register as register_cli
from scrm.kernel.feature import Feature
from scrm.lifecycle.welcome import install_welcome_media

from .handlers import router

if TYPE_CHECKING:
    from scrm.app import Runtime


def _outbox(runtime: Runtime) -> None:
    # Welcomes carry their media ids' sources: a 40007 re-uploads and resends in the window.
    install_welcome_media(runtime.outbox, runtime.settings.playbook.materials_dir)


FEATURE = Feature(name="contacts", router=router, outbox=_outbox, cli=register_cli)
