"""The sandbox as a bench's WeCom: served on a loopback port with every answer counted by API
and errcode (every sandbox reply is HTTP 200 + JSON ``{"errcode", ...}``), so a bench can say
exactly how many 45009s (over WeCom's rate limit) it provoked."""

from __future__ import annotations

import contextlib
import json
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web

from scrm.sandbox.server import SandboxServer

FREQ_LIMIT = 45009


@dataclass
class Served:
    port: int
    answers: Counter[tuple[str, int]] = field(default_factory=Counter)  # (api, errcode) → answers

    @property
    def rejected_45009(self) -> int:
        return sum(n for (_api, errcode), n in self.answers.items() if errcode == FREQ_LIMIT)


@contextlib.asynccontextmanager
async def serving(server: SandboxServer, host: str) -> AsyncIterator[Served]:
    """Serve ``server`` on ``host`` (a free port) until the block ends."""
    answers: Counter[tuple[str, int]] = Counter()

    @web.middleware
    async def count(request: web.Request,
                    handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        resp = await handler(request)
        errcode = -999  # not a JSON answer (a page, a file)
        if isinstance(resp, web.Response) and isinstance(resp.body, bytes | bytearray):
            with contextlib.suppress(ValueError, TypeError, AttributeError):
                errcode = int(json.loads(resp.body).get("errcode", 0) or 0)
        answers[(request.path.removeprefix("/cgi-bin/"), errcode)] += 1
        return resp

    server.app.middlewares.append(count)
    runner = web.AppRunner(server.app, handle_signals=False, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, 0).start()
        yield Served(runner.addresses[0][1], answers)
    finally:
        await runner.cleanup()
