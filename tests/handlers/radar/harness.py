"""A radar test stack: the service app (radar + timeline routers) and the WeCom sandbox over HTTP.

One FakeClock for both; workers off: tests step the inbox and the outbox themselves.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from aiohttp.test_utils import TestClient, TestServer

from handlers.contacts.models import Customer
from handlers.radar import handlers as radar
from handlers.radar.links import LinkMaker
from handlers.timeline import handlers as timeline
from scrm.adapters.wecom.api import WeComClient
from scrm.adapters.wecom.token import MemoryTokenStore
from scrm.kernel.clock import FakeClock
from scrm.kernel.config import Settings
from scrm.kernel.service import Runtime
from scrm.sandbox.demo import DemoIds, seed_demo
from scrm.sandbox.server import SandboxServer
from scrm.sandbox.state import SandboxState
from tests.fakes.service import drain, running_service
from tests.support.stack import sandbox_settings, write_playbook

MATERIALS = """\
- id: m-fund
  type: link
  title: 稳健理财周报
  link: {title: 稳健理财周报, url: "https://bank.example.com/fund?week=47"}
  interest_tags: [兴趣/理财]
  approved: {by: 合规部-测试, at: 2025-01-01}
- id: m-plain
  type: text
  text: "您好"
  approved: {by: 合规部-测试, at: 2025-01-01}
- id: t-welcome-default
  type: text
  text: "{customer.name}您好，我是{manager.name}。"
  approved: {by: 合规部-测试, at: 2025-01-01}
- id: t-welcome-payroll
  type: text
  text: "代发开卡礼"
  approved: {by: 合规部-测试, at: 2025-01-01}
- id: t-welcome-salon
  type: text
  text: "理财沙龙"
  approved: {by: 合规部-测试, at: 2025-01-01}
- id: t-group-welcome
  type: text
  channels: [group]
  text: "欢迎加入{group.name}！"
  approved: {by: 合规部-测试, at: 2025-01-01}
"""


@dataclass
class RadarStack:
    clock: FakeClock
    state: SandboxState
    ids: DemoIds
    runtime: Runtime
    client: TestClient[Any, Any]
    settings: Settings
    links: LinkMaker
    sandbox_base: str

    async def run(self) -> None:
        """Wait for queued clicks to commit, then process every due inbox row and outbox action."""
        await self.runtime.inbox.writer.sync()
        await drain(self.runtime)
        while await self.runtime.outbox.process_due():
            pass

    async def open(self, link: str, **query: str) -> tuple[int, str]:
        """GET a tracked link on the service like a browser's first hop; (status, Location)."""
        path = urlsplit(link).path
        resp = await self.client.get(path, params=query or None, allow_redirects=False)
        return resp.status, resp.headers.get("Location", "")

    def app_messages(self, to: str) -> list[str]:
        messages = self.state.delivered_messages(kind="app", to=to)
        return [str(d.content.get("text", {}).get("content", "")) for d in messages]

    def tag_ids(self, userid: str, ext: str) -> list[str]:
        follow = self.state.follow(userid, ext)
        assert follow is not None
        return list(follow.tag_ids)


@contextlib.asynccontextmanager
async def radar_stack(db_url: str, root: Path, *, oauth: bool = False, **radar_settings: Any,
                      ) -> AsyncIterator[RadarStack]:
    clock = FakeClock()
    state = SandboxState()
    ids = seed_demo(state)
    sandbox_http = TestServer(SandboxServer(state, clock).app)
    await sandbox_http.start_server()
    try:
        base = str(sandbox_http.make_url("")).rstrip("/")
        sop, mat = write_playbook(root, materials=MATERIALS)
        settings = sandbox_settings(db_url, base, sop, mat, radar={
            "signing_key": "test-radar-key", "oauth_enabled": oauth,
            "oauth_authorize_url": base + "/connect/oauth2/authorize", **radar_settings})
        wecom = WeComClient(settings.wecom, token_store=MemoryTokenStore(clock), clock=clock)
        async with running_service(settings, clock=clock, wecom=wecom, playbook=True,
                                   routers=[radar.router, timeline.router]) as (runtime, client):
            async with runtime.sessions() as session, session.begin():
                session.add_all([Customer(external_userid=c.external_userid, name=c.name, updated_at=clock.now())
                                 for c in state.customers.values()])
            yield RadarStack(clock, state, ids, runtime, client, settings, LinkMaker(settings), base)
    finally:
        await sandbox_http.close()
