"""``scrm serve``: check what an operator can get wrong, then run one service instance until interrupted.

The checks run before anything logs or listens, so a missing setting, a wrong folder, a busy port
or an unmigrated database is one line from ``scrm`` (exit 2), not a traceback after "listening".
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket

from aiohttp import web

from scrm.adapters.db import migrate
from scrm.kernel.config import ConfigError, Settings, WeComSettings
from scrm.kernel.http import create_app
from scrm.kernel.logs import setup_logging
from scrm.main import build_runtime

log = logging.getLogger("scrm.serve")


def serve(settings: Settings, *, sandbox: bool = False, demo: bool = True, existing: int = 0) -> None:
    preflight(settings, sandbox=sandbox)
    setup_logging(settings.log.level, settings.log.format, personal_data=settings.log.personal_data)
    if sandbox:
        from scrm.sandbox.runner import run_with_sandbox

        run_with_sandbox(settings, demo=demo, build=lambda s, clock: build_runtime(s, clock=clock), existing=existing)
        return
    runtime = build_runtime(settings)  # loads the playbook: its errors stop the start before any migration
    if settings.database.is_sqlite:
        # One file, one process: upgrading on start is safe. PostgreSQL deployments run
        # `scrm db upgrade` once per release instead, so instances never race on DDL.
        migrate.upgrade(settings.database.url)
    app = create_app(runtime)
    log.info("listening", extra={"host": settings.server.host, "port": settings.server.port})
    try:
        web.run_app(app, host=settings.server.host, port=settings.server.port, print=None)
    except OSError as exc:  # taken between the check and now
        problem = listen_problem(settings.server.host, settings.server.port, exc)
        if problem is None:
            raise
        raise ConfigError(problem) from None


def preflight(settings: Settings, *, sandbox: bool) -> None:
    """Raise ConfigError (or DatabaseNotReady) for what would otherwise fail after start-up."""
    if not sandbox:  # the sandbox brings its own tenant and credentials
        require_wecom(settings.wecom)
    settings.playbook.require_sop_dir()
    port = settings.server.port
    for p in (port, port + 1) if sandbox else (port,):  # the sandbox's WeCom listens on port + 1
        require_free_port(settings.server.host, p)
    # SQLite is migrated on start (see serve); a sandbox run has a database of its own.
    if not sandbox and not settings.database.is_sqlite:
        asyncio.run(migrate.require_head(settings.database.url))


def require_wecom(wecom: WeComSettings) -> None:
    """The callback cannot decrypt anything without these; say which are missing."""
    values = {"corp_id": wecom.corp_id, "token": wecom.token.get_secret_value(),
              "encoding_aes_key": wecom.encoding_aes_key.get_secret_value()}
    missing = [name for name, value in values.items() if not value]
    if missing:
        raise ConfigError(f"[wecom] {', '.join(missing)} not set: put them in the config file (--config, "
                          "$SCRM_CONFIG or ./scrm.toml; see config.example.toml), or run `scrm serve --sandbox` "
                          "for a demo without credentials")


def require_free_port(host: str, port: int) -> None:
    """Bind and release the address the way aiohttp will, so a clash is one line before anything starts."""
    if port == 0:  # any free port
        return
    try:
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ConfigError(f"cannot listen on {host!r} ({exc.strerror}): set [server] host") from None
    for family, kind, proto, _, address in addresses:
        with socket.socket(family, kind, proto) as sock:
            # As asyncio's create_server does: reuse TIME_WAIT ports, IPv6 sockets IPv6 only.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                sock.bind(address)
            except OSError as exc:
                raise ConfigError(listen_problem(host, port, exc) or f"cannot listen on {host}:{port}: {exc}") from None


def listen_problem(host: str, port: int, exc: OSError) -> str | None:
    """One line for the bind errors an operator fixes in [server]; None for anything else."""
    if exc.errno == errno.EADDRINUSE:
        return f"port {port} on {host} is in use: stop the other process or set [server] port"
    if exc.errno == errno.EADDRNOTAVAIL:
        return f"cannot listen on {host}: not an address of this machine; set [server] host"
    if exc.errno == errno.EACCES:
        return f"port {port} on {host} needs privileges scrm does not have: set [server] port above 1023"
    return None
