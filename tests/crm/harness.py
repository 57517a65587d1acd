"""CRM test stack: the lifecycle stack with a CRM tag map, a webhook receiver and a signer."""

from __future__ import annotations

import contextlib
import json
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

from scrm.crm import auth
from scrm.crm.webhook import KEY_HEADER
from tests.lifecycle import harness
from tests.lifecycle.harness import Stack

SECRET = "crm-test-secret"
HOOK_SECRET = "hook-test-secret"

CRM_TAGS = """\
groups:
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
  渠道:
    owner: manager
    tags: [代发开卡, 网点大堂, 理财沙龙, 信用卡活动]
  兴趣:
    owner: manager
    tags: [理财, 健康, 旅游]
  偏好:
    owner: manager
    tags: [免打扰]
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
        from scrm.crm import discover, store
        from scrm.crm.records import CustomerRecord
        from scrm.db.models import InboxEvent

        rt, now = self.s.runtime, self.s.clock.now()
        async with rt.sessions() as session, session.begin():
            await store.upsert_customers(session, rt.inbox, [CustomerRecord.model_validate(r) for r in customers],
                                         now)
            await session.execute(InboxEvent.__table__.delete())
        async with rt.sessions() as session, session.begin():
            infos = await discover.read_unmirrored(session, self.s.wecom, [c["crm_id"] for c in customers])
            await discover.write_contacts(session, infos, now)

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
    original_tags, original_settings = harness.TAGS, harness.sandbox_settings

    def settings(*a: Any, **kw: Any) -> Any:
        kw["crm"] = {"hmac_secret": SECRET, "webhook_url": str(hook.make_url("/hook")),
                     "webhook_secret": HOOK_SECRET, "sync_chunk": 3, **(crm or {})}
        if wecom:
            kw["wecom"] = {**kw.get("wecom", {}), **wecom}
        return original_settings(*a, **kw)

    harness.TAGS, harness.sandbox_settings = CRM_TAGS, settings  # type: ignore[assignment]
    try:
        async with harness.stack(db_url, root) as s:
            yield CrmStack(s, receiver)
    finally:
        harness.TAGS, harness.sandbox_settings = original_tags, original_settings  # type: ignore[assignment]
        await hook.close()
