"""WeCom's side of a chaos run: the sandbox server, and a driver that delivers every event the
way WeCom does when the receiver is down: again and again until it is acknowledged.

``QueuingDriver`` reuses ``CallbackDriver``'s methods (each changes the sandbox tenant as the
client or admin action would, then builds the event) but does not post: ``Poster`` does, to any
serving instance (a load balancer's choice), retrying every 0.5–1 s after a refused connection,
a timeout or a non-200 answer, and notes the moment of the first 200.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import aiohttp
from aiohttp import web

from scrm.adapters.wecom.crypto import WeComCrypto
from scrm.kernel.clock import SystemClock
from scrm.sandbox import SANDBOX_AES_KEY, SANDBOX_CORP_ID, SANDBOX_TOKEN
from scrm.sandbox import event_xml as ex
from scrm.sandbox.driver import CallbackDriver, DeliveryOutcome
from scrm.sandbox.server import SandboxServer
from scrm.sandbox.state import SandboxState
from tests.chaos.service import HOST

# WeCom waits 5 s for the answer before it counts a delivery as failed.
DELIVERY_TIMEOUT_S = 5.0
RETRY_S = (0.5, 1.0)


async def start_sandbox(state: SandboxState) -> tuple[web.AppRunner, str]:
    """The sandbox on a free loopback port, on real time; (runner, base URL)."""
    server = SandboxServer(state, SystemClock())
    runner = web.AppRunner(server.app, handle_signals=False, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, HOST, 0)
    await site.start()
    return runner, f"http://{HOST}:{runner.addresses[0][1]}"


class QueuingDriver(CallbackDriver):
    """Changes the sandbox and builds each event, but leaves the posting to ``Poster``."""

    async def deliver(self, fields: Sequence[tuple[str, ex.Value]], *, app_event: bool = False) -> DeliveryOutcome:
        if app_event:
            raise NotImplementedError("the chaos run sends no app events")
        flat = {k: str(v) for k, v in fields if isinstance(v, str | int) and not isinstance(v, bool)}
        return DeliveryOutcome(delivered=False, attempts=0, statuses=[], xml=ex.build(fields), fields=flat)


@dataclass
class Delivered:
    """When an event was built and first acknowledged (real time, seconds since the epoch)."""

    built_at: float
    ack_at: float
    attempts: int


class Poster:
    """POSTs events to a serving instance until one answers 200."""

    def __init__(self, urls: Callable[[], list[str]], all_urls: list[str], seed: int) -> None:
        self.urls = urls  # the serving instances' callback URLs now
        self.all_urls = all_urls  # every slot's, tried when none is known to serve
        self.crypto = WeComCrypto(SANDBOX_TOKEN, SANDBOX_AES_KEY, SANDBOX_CORP_ID)
        self.clock = SystemClock()
        self.rng = random.Random(seed)
        self.outcomes: Counter[str] = Counter()
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Poster:
        self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()

    def now(self) -> float:
        return self.clock.now().timestamp()

    async def deliver(self, out: DeliveryOutcome) -> Delivered:
        """Until acknowledged; returns when it was."""
        assert self._session is not None
        built = int(out.fields.get("CreateTime", "0"))
        attempts = 0
        while True:
            attempts += 1
            url = self.rng.choice(self.urls() or self.all_urls)
            timestamp = str(int(self.now()))
            nonce = str(self.rng.randint(10**8, 10**10))
            body, signature = self.crypto.envelope(out.xml, timestamp, nonce)
            try:
                async with self._session.post(
                    url, params={"msg_signature": signature, "timestamp": timestamp, "nonce": nonce},
                    data=body.encode(), headers={"Content-Type": "text/xml; charset=utf-8"},
                    timeout=aiohttp.ClientTimeout(total=DELIVERY_TIMEOUT_S),
                ) as response:
                    await response.read()
                    status = str(response.status)
            except TimeoutError:
                status = "timeout"
            except aiohttp.ClientError as exc:
                status = type(exc).__name__
            self.outcomes[status] += 1
            if status == "200":
                return Delivered(float(built), self.now(), attempts)
            await asyncio.sleep(self.rng.uniform(*RETRY_S))
