"""The test stack: the real service app and the WeCom sandbox, both over real HTTP.

``stack()`` starts the sandbox on a loopback port (seeded with the demo bank unless
``demo=False``), writes a playbook into the test's folder (the small lifecycle one of
``tests.support.playbooks`` unless ``playbook=`` gives the directories of another), runs the
service with a real ``WeComClient`` pointed at the sandbox, and gives a ``CallbackDriver`` that
plays WeCom towards the service's callback URL. Time is one FakeClock shared by all three.
Workers are off: tests step the inbox, the outbox and the scheduler themselves (``run``,
``step``, ``run_until``).

Every feature runs unless ``routers=`` names some. Feature-specific setup lives with the
feature's tests (the radar materials, the CRM webhook receiver, the SOP seeding).
"""

from __future__ import annotations

import contextlib
import random
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select

from handlers.contacts.models import Customer, Member
from handlers.radar.links import LinkMaker
from handlers.sop.models import SopTask
from scrm.adapters.wecom.api import WeComClient
from scrm.adapters.wecom.token import MemoryTokenStore
from scrm.kernel.clock import FakeClock
from scrm.kernel.config import Settings
from scrm.kernel.dispatch import Router
from scrm.kernel.models import DueJob, Occurrence, OutboxAction
from scrm.kernel.outbox import PRIORITY_WELCOME
from scrm.kernel.service import Runtime
from scrm.sandbox import SANDBOX_AES_KEY, SANDBOX_AGENT_ID, SANDBOX_CORP_ID, SANDBOX_SECRET, SANDBOX_TOKEN
from scrm.sandbox.demo import DemoIds, seed_demo
from scrm.sandbox.driver import CallbackDriver, DeliveryOutcome
from scrm.sandbox.records import Card, Limits, ReceivedCall
from scrm.sandbox.server import SandboxServer
from scrm.sandbox.state import SandboxState
from tests.conftest import make_settings
from tests.fakes.wecom_sender import post_event
from tests.support.playbooks import CHANNELS, GROUPS, MATERIALS, TAGS, write_playbook
from tests.support.service import drain, running_service

__all__ = ["PUBLIC_URL", "Stack", "sandbox_settings", "stack", "wecom_client", "write_playbook"]

#: The service's public URL in the stack (tracked links start with it).
PUBLIC_URL = "https://scrm.bank.example"


def sandbox_settings(db_url: str, api_base: str, sop: Path, mat: Path, **sections: dict[str, Any]) -> Settings:
    """Settings for the service against the sandbox at ``api_base``, with the playbook ``sop``/``mat``.

    ``sections`` add settings; their ``wecom``, ``radar`` and ``server`` keys merge into these.
    """
    wecom = {"corp_id": SANDBOX_CORP_ID, "token": SANDBOX_TOKEN, "encoding_aes_key": SANDBOX_AES_KEY,
             "secret": SANDBOX_SECRET, "agent_id": SANDBOX_AGENT_ID, "api_base": api_base,
             # Generous: the client's pacing sleeps on the FakeClock, which would move time.
             "per_api_per_minute": 600_000, **sections.pop("wecom", {})}
    radar = {"oauth_authorize_url": api_base + "/connect/oauth2/authorize", **sections.pop("radar", {})}
    server = {"public_url": PUBLIC_URL, **sections.pop("server", {})}
    return make_settings(db_url, wecom=wecom, radar=radar, server=server,
                         playbook={"sop_dir": str(sop), "materials_dir": str(mat)}, **sections)


def wecom_client(settings: Settings, clock: FakeClock) -> WeComClient:
    """The service's WeCom client: tokens in memory, the stack's clock, a seeded backoff jitter."""
    return WeComClient(settings.wecom, token_store=MemoryTokenStore(clock), clock=clock, rng=random.Random(7))


MERGED_HEAD = re.compile(r"^【(\d+)条提醒】\n")


def split_merged(message: str) -> list[str]:
    """The notices in one app message (the format ``scrm.kernel.outbox.merge_notices`` writes)."""
    head = MERGED_HEAD.match(message)
    if head is None:
        return [message]
    parts = re.split(r"\n\n(?=\d+\. )", message[head.end():])
    notices = [re.sub(r"^\d+\. ", "", part, count=1) for part in parts]
    assert len(notices) == int(head.group(1)), message
    return notices


@dataclass
class Stack:
    """One running stack (see ``stack()``): its parts, steps that move it on, and looks into it."""

    clock: FakeClock
    state: SandboxState
    server: SandboxServer
    #: The sandbox's base URL (WeCom's API and OAuth pages).
    sandbox_base: str
    runtime: Runtime
    client: TestClient[Any, Any]
    driver: CallbackDriver
    settings: Settings
    wecom: WeComClient
    #: The demo bank's ids; None when the stack was built with ``demo=False``.
    demo: DemoIds | None

    @property
    def ids(self) -> DemoIds:
        """The demo bank's ids (names → external ids, tag names → tag ids, ...)."""
        assert self.demo is not None, "this stack was built with demo=False"
        return self.demo

    @cached_property
    def links(self) -> LinkMaker:
        """Mints and reads tracked (radar) links with the service's key and public URL."""
        return LinkMaker(self.settings)

    # -- stepping ------------------------------------------------------------------------------

    async def run(self) -> None:
        """Wait for queued writes (radar clicks) to commit, then process every due inbox row, then
        every due outbox action (welcomes first)."""
        await self.runtime.inbox.writer.sync()
        await drain(self.runtime)
        await self.send()

    async def step(self) -> None:
        """Let the pipeline run at the current time: scheduler, handlers, outbox, until quiet."""
        await self.runtime.scheduler.tick()
        await drain(self.runtime)
        while await self.send():
            await drain(self.runtime)

    async def run_until(self, end: datetime, *, late: timedelta = timedelta(minutes=1)) -> None:
        """Jump from one due job to the next (``late`` after it) until ``end``; then step at ``end``."""
        while True:
            async with self.runtime.sessions() as s:
                nxt = await s.scalar(select(func.min(DueJob.next_run_at)).where(DueJob.enabled.is_(True)))
            if nxt is None or nxt + late > end:
                break
            self.clock.set(max(self.clock.now(), nxt + late))
            await self.step()
        self.clock.set(max(self.clock.now(), end))
        await self.step()

    async def send(self) -> int:
        """Send every due outbox action (interactive ones first); returns how many were processed."""
        total = 0
        while n := (await self.runtime.outbox.process_due(max_priority=PRIORITY_WELCOME)
                    + await self.runtime.outbox.process_due()):
            total += n
        return total

    async def redeliver(self, outcome: DeliveryOutcome) -> int:
        """WeCom delivering the same event again (its retry); returns the HTTP status."""
        status, _ = await post_event(self.client, self.runtime.crypto(), outcome.xml,
                                     timestamp=str(int(self.clock.now().timestamp())))
        return status

    async def open(self, link: str, **query: str) -> tuple[int, str]:
        """GET a tracked link on the service like a browser's first hop; (status, Location)."""
        path = urlsplit(link).path
        resp = await self.client.get(path, params=query or None, allow_redirects=False)
        return resp.status, resp.headers.get("Location", "")

    # -- looking: the sandbox ----------------------------------------------------------------

    def calls(self, api: str) -> list[ReceivedCall]:
        """The calls the sandbox received for ``api`` (e.g. ``externalcontact/mark_tag``)."""
        return self.state.received_calls(api)

    def app_messages(self, to: str | None = None) -> list[str]:
        """The text of every app message delivered (to ``to``), oldest first."""
        return [str(d.content.get("text", {}).get("content", d.content.get("content", "")))
                for d in self.state.delivered_messages(kind="app", to=to)]

    def notices(self, to: str) -> list[str]:
        """The notices ``to`` read, oldest first: a merged message (``【3条提醒】`` then ``1. …``,
        ``2. …``) counts as each notice it carries."""
        return [notice for message in self.app_messages(to) for notice in split_merged(message)]

    def texts_to(self, userid: str) -> list[str]:
        """The text app messages (not cards) delivered to ``userid``, oldest first."""
        return [str(d.content["text"].get("content", ""))
                for d in self.state.delivered_messages(kind="app", to=userid) if d.msgtype == "text"]

    def cards(self, to: str) -> list[Card]:
        """The template cards sent to ``to``."""
        return [c for c in self.state.cards.values() if to in c.recipients]

    def tag_ids(self, userid: str, ext: str) -> list[str]:
        """The tag ids ``userid`` has put on customer ``ext`` in WeCom."""
        follow = self.state.follow(userid, ext)
        assert follow is not None
        return list(follow.tag_ids)

    # -- looking: the service's database -------------------------------------------------------

    async def outbox_rows(self, api: str | None = None) -> list[OutboxAction]:
        """Every outbox action (for ``api``), in the order queued."""
        async with self.runtime.sessions() as s:
            rows = list((await s.scalars(select(OutboxAction).order_by(OutboxAction.id))).all())
        return [r for r in rows if api is None or r.payload.get("api") == api]

    async def occurrences(self, outcome: str | None = None) -> list[Occurrence]:
        """The scheduler's occurrences (with ``outcome``: sent, skipped, deferred, ...), in order."""
        async with self.runtime.sessions() as s:
            q = select(Occurrence).order_by(Occurrence.id)
            if outcome is not None:
                q = q.where(Occurrence.outcome == outcome)
            return list((await s.scalars(q)).all())

    async def tasks(self) -> list[SopTask]:
        """The SOP tasks (manager cards), oldest first."""
        async with self.runtime.sessions() as s:
            return list((await s.scalars(select(SopTask).order_by(SopTask.created_at, SopTask.key))).all())


async def _copy_directory(runtime: Runtime, state: SandboxState, clock: FakeClock, *, members: bool,
                          customers: bool) -> None:
    """Member names come from the bank's staff directory (WeCom no longer returns them to new
    self-built apps); here they are copied from the sandbox, as an org import would. Customers are
    copied only when asked (as if contacts had been synced before the test)."""
    async with runtime.sessions() as session, session.begin():
        if members:
            session.add_all([Member(userid=m.userid, name=m.name, department=str(m.department[-1]))
                             for m in state.members.values()])
        if customers:
            session.add_all([Customer(external_userid=c.external_userid, name=c.name, updated_at=clock.now())
                             for c in state.customers.values()])


@contextlib.asynccontextmanager
async def stack(db_url: str, root: Path, *, start: datetime | None = None,
                playbook: tuple[Path, Path] | None = None, channels: str | None = None, groups: str | None = None,
                materials: str | None = None, tags: str | None = None, routers: list[Router] | None = None,
                sections: dict[str, dict[str, Any]] | None = None, limits: Limits | None = None,
                demo: bool = True, customers: bool = False, port: int | None = None) -> AsyncIterator[Stack]:
    """The service, the sandbox tenant and a playbook, on one FakeClock.

    - ``start``: the clock's first reading (default: FakeClock's own).
    - ``playbook``: (sop_dir, materials_dir) already written, e.g. by ``write_shipped_playbook``;
      by default the small lifecycle playbook is written under ``root``, with ``channels``,
      ``groups``, ``materials`` and ``tags`` replacing its files.
    - ``routers``: the handlers that run (default: every feature).
    - ``sections``: more settings (``{"crm": {...}}``); ``wecom``, ``radar`` and ``server`` keys
      merge into the stack's own (see ``sandbox_settings``).
    - ``limits``: the sandbox's limits (default: two follow users per page).
    - ``demo``: seed the sandbox with the demo bank and copy its members into the Member table;
      ``demo=False`` starts from an empty tenant.
    - ``customers``: also copy the sandbox's customers into the Customer table.
    - ``port``: serve the service on this port (browser tests put it in ``server.public_url``).
    """
    if playbook is not None and (channels, groups, materials, tags) != (None, None, None, None):
        raise TypeError("channels/groups/materials/tags shape the small playbook; not with playbook=")
    clock = FakeClock(start.astimezone(UTC)) if start is not None else FakeClock()
    state = SandboxState(limits=limits or Limits(follow_user_page=2))
    ids = seed_demo(state) if demo else None
    server = SandboxServer(state, clock)
    sandbox_http = TestServer(server.app)
    await sandbox_http.start_server()
    try:
        base = str(sandbox_http.make_url("")).rstrip("/")
        if playbook is None:
            playbook = write_playbook(root, channels=CHANNELS if channels is None else channels,
                                      groups=GROUPS if groups is None else groups,
                                      materials=MATERIALS if materials is None else materials,
                                      tags=TAGS if tags is None else tags)
        sop, mat = playbook
        settings = sandbox_settings(db_url, base, sop, mat, **(sections or {}))
        wecom = wecom_client(settings, clock)
        async with running_service(settings, clock=clock, wecom=wecom, routers=routers, playbook=True,
                                   port=port) as (runtime, client):
            await _copy_directory(runtime, state, clock, members=demo, customers=customers)
            url = str(client.make_url("/wecom/callback"))
            async with CallbackDriver(state, runtime.crypto(), url, clock, seed=7) as driver:
                yield Stack(clock=clock, state=state, server=server, sandbox_base=base, runtime=runtime,
                            client=client, driver=driver, settings=settings, wecom=wecom, demo=ids)
    finally:
        await sandbox_http.close()
