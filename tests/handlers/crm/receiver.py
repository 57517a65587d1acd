"""The CRM side of the tests: the test stack with a CRM tag map and ``[crm]`` section, the CRM's
webhook receiver, and a signer for the CRM API."""

from __future__ import annotations

import contextlib
import json
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

from handlers.crm import auth
from handlers.crm.webhook import KEY_HEADER
from scrm.kernel.progress import Progress
from tests.support.playbooks import TAGS
from tests.support.stack import Stack, stack

SECRET = "crm-test-secret"
HOOK_SECRET = "hook-test-secret"

# The small playbook's manager-owned groups, plus the groups the CRM owns.
CRM_TAGS = TAGS + """\
  客户等级:
    owner: crm
    from: crm.tier
    map: {V0: V0, V1: V1, V2: V2, V3: V3, VIP: VIP, VVIP: VVIP}
  产品持有:
    owner: crm
    from: crm.products
    map: {payroll: 代发, mortgage: 按揭, wealth: 理财, credit_card: 信用卡, pension: 养老金}
  资产规模:
    owner: crm
    from: crm.aum
    bands:
      - {below: 50000, tag: 5万以下}
      - {below: 500000, tag: 5万-50万}
      - {tag: 50万以上}
"""


@dataclass
class Receiver:
    """The CRM's webhook endpoint: verifies signatures, records bodies, dedups by key."""

    secret: str
    received: list[dict[str, Any]] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)
    rejected: int = 0
    fail_next: int = 0

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        try:
            auth.verify(self.secret, request.headers.get(auth.TIMESTAMP_HEADER),
                        request.headers.get(auth.SIGNATURE_HEADER), body, float(request.headers[auth.TIMESTAMP_HEADER]),
                        300)
        except auth.AuthError:
            self.rejected += 1
            return web.json_response({"error": "bad signature"}, status=401)
        if self.fail_next:
            self.fail_next -= 1
            return web.json_response({"error": "busy"}, status=503)
        key = request.headers[KEY_HEADER]
        if key not in self.keys:
            self.keys.append(key)
            self.received.append(json.loads(body))
        return web.json_response({"ok": True})


class RecordingProgress(Progress):
    """Records every (position, note) a progress reporter is given (no throttling)."""

    def __init__(self) -> None:
        super().__init__("test", every_s=0.0)
        self.updates: list[tuple[int, str]] = []

    def update(self, position: int, note: str) -> None:
        self.updates.append((position, note))

    @property
    def positions(self) -> list[int]:
        return [p for p, _ in self.updates]

    @property
    def notes(self) -> list[str]:
        return [n for _, n in self.updates]


@dataclass
class CrmStack:
    s: Stack
    receiver: Receiver

    async def post(self, path: str, data: Any, *, secret: str = SECRET, ts: int | None = None,
                   raw: bytes | None = None) -> tuple[int, dict[str, Any]]:
        body = raw if raw is not None else json.dumps(data, ensure_ascii=False).encode()
        stamp = int(self.s.clock.now().timestamp()) if ts is None else ts
        resp = await self.s.client.post(path, data=body, headers=auth.headers(secret, stamp, body))
        return resp.status, await resp.json()

    async def seed_quietly(self, customers: list[dict[str, Any]]) -> None:
        """Store CRM customers and mirror their contacts, but queue no incremental sync.

        Leaves all the tag work to a full run (nightly, ``scrm sync tags``, the runner).
        """
        from handlers.crm import discover, store
        from handlers.crm.records import CustomerRecord
        from scrm.kernel.models import InboxEvent

        rt, now = self.s.runtime, self.s.clock.now()
        async with rt.sessions() as session, session.begin():
            await store.upsert_customers(session, rt.inbox, [CustomerRecord.model_validate(r) for r in customers],
                                         now)
            await session.execute(InboxEvent.__table__.delete())
        async with rt.sessions() as session, session.begin():
            infos = await discover.read_unmirrored(session, self.s.wecom, [c["crm_id"] for c in customers])
            await discover.write_contacts(session, infos, now)

    async def queue_pending_calls(self, n: int) -> None:
        """``n`` queued outbox actions that are not due: stand for sync calls still to be sent."""
        from scrm.kernel.models import OutboxAction

        now = self.s.clock.now()
        later = now + timedelta(days=365)
        async with self.s.runtime.sessions() as session, session.begin():
            await session.execute(OutboxAction.__table__.insert(), [
                {"idempotency_key": f"crmtag:earlier:{i}", "kind": "wecom", "payload": {}, "priority": 200,
                 "status": "pending", "attempts": 0, "next_attempt_at": later, "created_at": now}
                for i in range(n)])

    def mark_tag_pairs(self) -> Counter[tuple[str, str]]:
        """mark_tag calls WeCom received, per (manager, customer)."""
        return Counter((x.body["userid"], x.body["external_userid"])
                       for x in self.s.calls("externalcontact/mark_tag"))

    def tag_names(self, userid: str, ext: str) -> set[str]:
        st = self.s.state
        out = set()
        for t in st.require_follow(userid, ext).tag_ids:
            tag = st.tags[t]
            out.add(f"{st.tag_groups[tag.group_id].group_name}/{tag.name}")
        return out


@contextlib.asynccontextmanager
async def crm_stack(db_url: str, root: Path, *, crm: dict[str, Any] | None = None,
                    wecom: dict[str, Any] | None = None) -> AsyncIterator[CrmStack]:
    receiver = Receiver(HOOK_SECRET)
    hook_app = web.Application()
    hook_app.router.add_post("/hook", receiver.handle)
    hook = TestServer(hook_app)
    await hook.start_server()
    crm_section = {"hmac_secret": SECRET, "webhook_url": str(hook.make_url("/hook")),
                   "webhook_secret": HOOK_SECRET, "sync_chunk": 3, **(crm or {})}
    sections: dict[str, dict[str, Any]] = {"crm": crm_section, **({"wecom": wecom} if wecom else {})}
    try:
        async with stack(db_url, root, tags=CRM_TAGS, sections=sections) as s:
            yield CrmStack(s, receiver)
    finally:
        await hook.close()
