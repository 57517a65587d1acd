"""``scrm serve``: run one service instance until interrupted."""

from __future__ import annotations

import logging

from aiohttp import web

from scrm.app import Runtime, create_app
from scrm.config import Settings
from scrm.db import migrate
from scrm.logs import setup_logging

log = logging.getLogger("scrm.serve")


def serve(settings: Settings, *, sandbox: bool = False, demo: bool = True) -> None:
    setup_logging(settings.log.level, settings.log.format)
    if sandbox:
        from scrm.sandbox.runner import run_with_sandbox

        run_with_sandbox(settings, demo=demo)
        return
    if settings.database.is_sqlite:
        # One file, one process: upgrading on start is safe. PostgreSQL deployments run
        # `scrm db upgrade` once per release instead, so instances never race on DDL.
        migrate.upgrade(settings.database.url)
    app = create_app(Runtime(settings))
    log.info("listening", extra={"host": settings.server.host, "port": settings.server.port})
    web.run_app(app, host=settings.server.host, port=settings.server.port, print=None)
