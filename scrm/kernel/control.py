"""The control socket: how ``scrm sop reload`` asks the running service and hears the outcome.

A Unix domain socket (mode 0600: only the service's own user may use it), never the public
HTTP port, so no admin endpoint is one proxy rule away from the internet, and no request file
is left in the admins' git checkout. One socket per service instance on a host; instances on
other hosts reload when their files change, or on SIGHUP.

    POST /playbook/reload   reload now → {"applied", "version", "errors", "warnings"}
    GET  /playbook          the running version, reload_failed and the last refusal's errors
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from scrm.kernel.config import Settings
from scrm.kernel.reloadable import PlaybookSource, ReloadOutcome

log = logging.getLogger("scrm.kernel.control")


def control_socket_path(settings: Settings) -> Path:
    """``[server] control_socket``, else one per playbook folder and port in the temp folder
    (the CLI and the service compute the same path from the same configuration)."""
    if settings.server.control_socket is not None:
        return settings.server.control_socket
    key = f"{settings.playbook.sop_dir.resolve()}|{settings.server.port}"
    return Path(tempfile.gettempdir()) / f"scrm-{hashlib.sha256(key.encode()).hexdigest()[:12]}.sock"


class ControlServer:
    """Serves the control socket for one runtime."""

    def __init__(self, path: Path, holder: PlaybookSource,
                 reload: Callable[[], Awaitable[ReloadOutcome]]) -> None:
        self.path = path
        self.holder = holder
        self.reload = reload
        self._runner: web.AppRunner | None = None
        self._inode: int | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/playbook/reload", self._reload)
        app.router.add_get("/playbook", self._status)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        old_umask = os.umask(0o177)  # the socket is created 0600
        try:
            await web.UnixSite(self._runner, str(self.path)).start()
        finally:
            os.umask(old_umask)
        self._inode = self.path.stat().st_ino

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        # Another instance started later may have taken the path over: remove only our own.
        with contextlib.suppress(OSError):
            if self._inode is not None and self.path.stat().st_ino == self._inode:
                self.path.unlink()

    async def _reload(self, request: web.Request) -> web.Response:
        outcome = await self.reload()
        return web.json_response(outcome.as_json())

    async def _status(self, request: web.Request) -> web.Response:
        h = self.holder
        return web.json_response({"loaded": h.current is not None, "version": h.version,
                                  "reload_failed": h.reload_failed, "errors": list(h.last_errors)})


class NoService(Exception):
    """Nothing listens on the control socket."""


async def request_reload(path: Path, timeout_s: float = 60.0) -> dict[str, Any]:
    """Ask the service behind ``path`` to reload; its outcome as JSON."""
    connector = aiohttp.UnixConnector(path=str(path))
    try:
        async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=timeout_s)) as s, \
                s.post("http://scrm/playbook/reload") as resp:
            resp.raise_for_status()
            data: dict[str, Any] = await resp.json()
            return data
    except TimeoutError:  # a subclass of OSError, but it means "slow", not "absent"
        raise
    except (aiohttp.ClientConnectionError, OSError) as exc:
        raise NoService(str(path)) from exc
