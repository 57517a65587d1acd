"""The built-in WeCom sandbox on a loopback port, and a real WeComClient pointed at it."""

from __future__ import annotations

import contextlib
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from aiohttp.test_utils import TestServer

from scrm.adapters.wecom.api import RetryPolicy, WeComClient
from scrm.adapters.wecom.token import MemoryTokenStore, TokenStore
from scrm.kernel.clock import FakeClock
from scrm.kernel.config import WeComSettings
from scrm.sandbox import SANDBOX_AGENT_ID, SANDBOX_CORP_ID, SANDBOX_SECRET
from scrm.sandbox.server import SandboxServer
from scrm.sandbox.state import SandboxState


@dataclass
class Sandbox:
    server: SandboxServer
    state: SandboxState
    client: WeComClient
    clock: FakeClock
    base_url: str

    @property
    def now(self) -> float:
        return self.clock.now().timestamp()


@contextlib.asynccontextmanager
async def running_sandbox(clock: FakeClock, *, per_api_per_minute: int = 10000, client_per_minute: int = 6000,
                          token_store: TokenStore | None = None, timeout_s: float = 2.0,
                          **server_kw: Any) -> AsyncIterator[Sandbox]:
    """Sandbox + client sharing one fake clock (rate-limit waits advance it, never sleep)."""
    state = SandboxState()
    server = SandboxServer(state, clock, per_api_per_minute=per_api_per_minute, **server_kw)
    http = TestServer(server.app)
    await http.start_server()
    base = str(http.make_url("")).rstrip("/")
    settings = WeComSettings(corp_id=SANDBOX_CORP_ID, secret=SANDBOX_SECRET,  # type: ignore[arg-type]
                             agent_id=SANDBOX_AGENT_ID, api_base=base, request_timeout_s=timeout_s,
                             per_api_per_minute=client_per_minute)
    client = WeComClient(settings, token_store=token_store or MemoryTokenStore(clock), clock=clock,
                         retry=RetryPolicy(max_attempts=4), rng=random.Random(7))
    try:
        yield Sandbox(server, state, client, clock, base)
    finally:
        await client.close()
        await http.close()
