"""The bank's fulfilment system as the tests see it: the CRM's webhook endpoint, answering
redemption requests as told — accept, refuse, fail (503), or take the order and drop the
connection before answering (the answer is lost, the order is placed)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

from handlers.crm import auth
from handlers.crm.webhook import KEY_HEADER

HOOK_SECRET = "hook-test-secret"


@dataclass
class Fulfilment:
    """``plan``: the answers to give, in order, to requests of a redemption (by id), then ``default``
    — ``accept``, ``refuse``, ``fail`` or ``drop``. Orders are kept by idempotency key: a repeat
    of a placed order places nothing more."""

    default: str = "accept"
    plan: dict[str, list[str]] = field(default_factory=dict)
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)  # idempotency key → body
    cancels: list[dict[str, Any]] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)  # idempotency keys in arrival order
    unsigned: int = 0

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        try:
            auth.verify(HOOK_SECRET, request.headers.get(auth.TIMESTAMP_HEADER),
                        request.headers.get(auth.SIGNATURE_HEADER), body,
                        float(request.headers[auth.TIMESTAMP_HEADER]), 300)
        except auth.AuthError:
            self.unsigned += 1
            return web.json_response({"error": "bad signature"}, status=401)
        data = json.loads(body)
        key = request.headers[KEY_HEADER]
        self.requests.append(key)
        if data["type"] == "redemption.cancel":
            self.cancels.append(data)
            return web.json_response({"ok": True})
        planned = self.plan.get(data["redemption_id"])
        answer = planned.pop(0) if planned else self.default
        if answer == "fail":
            return web.json_response({"error": "busy"}, status=503)
        if answer == "refuse" and key not in self.orders:
            return web.json_response({"error": "out of stock"}, status=409)
        self.orders.setdefault(key, data)
        if answer == "drop":
            assert request.transport is not None
            request.transport.close()  # the order is placed, its answer never arrives
        return web.json_response({"ok": True, "order_id": f"o-{data['redemption_id']}"})


@contextlib.asynccontextmanager
async def fulfilment_server(f: Fulfilment) -> AsyncIterator[str]:
    """Serve ``f``; yields its URL."""
    app = web.Application()
    app.router.add_post("/hook", f.handle)
    server = TestServer(app)
    await server.start_server()
    try:
        yield str(server.make_url("/hook"))
    finally:
        await server.close()
