"""Run the real service app in-process over real HTTP (aiohttp TestServer on loopback): the app alone,
no sandbox. ``tests.support.stack`` builds the whole stack on top of it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from handlers.timeline import handlers as timeline
from scrm.kernel.clock import Clock, FakeClock
from scrm.kernel.config import Settings
from scrm.kernel.dispatch import Router
from scrm.kernel.http import create_app
from scrm.kernel.service import Runtime
from scrm.main import build_runtime


def spine_routers() -> list[Router]:
    """Only the timeline recorder: for tests of the pipeline itself, not of business handlers."""
    return [timeline.router]


@contextlib.asynccontextmanager
async def running_service(settings: Settings, *, clock: Clock | None = None, workers: bool = False,
                          routers: list[Router] | None = None, wecom: Any = None, playbook: bool = False,
                          port: int | None = None) -> AsyncIterator[tuple[Runtime, TestClient[Any, Any]]]:
    """The service app on a loopback port; workers off by default so tests step them.

    ``playbook=True`` loads sop/ and materials/ from the settings' playbook directories.
    ``port``: a fixed port (a browser test needs the address in ``server.public_url``).
    """
    if routers is None and not playbook:  # without a playbook only the pipeline's own handlers can run
        routers = spine_routers()
    runtime = build_runtime(settings, clock=clock or FakeClock(), routers=routers, wecom=wecom,
                      load_playbook=playbook)
    app = create_app(runtime, workers=workers)
    client: TestClient[Any, Any] = TestClient(TestServer(app, port=port) if port else TestServer(app))
    await client.start_server()
    try:
        yield runtime, client
    finally:
        await client.close()


async def drain(runtime: Runtime) -> int:
    """Process inbox rows until nothing is due; returns how many were handled."""
    total = 0
    while True:
        outcome = await runtime.inbox.process_due(runtime.dispatcher, runtime.handler_context())
        if outcome.total == 0:
            return total
        total += outcome.total


async def wait_until(check: Callable[[], Awaitable[bool]], timeout_s: float = 5.0) -> None:
    """Wait for background work to reach a state (bounded; not a timing assertion)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not await check():
        if loop.time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)
