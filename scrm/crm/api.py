"""The CRM's HTTP API on the service: the bank's systems push customers, events and bindings.

    POST /crm/v1/customers:batchUpsert   {"customers": [CustomerRecord, ...]}
    POST /crm/v1/events                  {"events": [EventRecord, ...]}
    POST /crm/v1/bindings                {"bindings": [BindingRecord, ...]}

Every request is HMAC-signed (:mod:`scrm.crm.auth`). A batch is all or nothing: any invalid
record rejects the request with 400 and every record's error (``customers[3].crm_id: ...``), so
the sender fixes and resends it whole. Verify, store, acknowledge: the tag sync runs later from
the inbox, never inside the request.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from aiohttp import web
from pydantic import BaseModel, ValidationError

from scrm.crm import store
from scrm.crm.auth import SIGNATURE_HEADER, TIMESTAMP_HEADER, AuthError, verify
from scrm.crm.records import BindingRecord, CustomerRecord, EventRecord, explain

if TYPE_CHECKING:
    from scrm.app import Runtime

MAX_BODY = 8 * 2**20
MAX_RECORDS = 5000

Storer = Callable[..., Awaitable[store.StoreResult]]


def _error(status: int, message: str, **extra: Any) -> web.Response:
    return web.json_response({"error": message, **extra}, status=status)


async def _read_body(request: web.Request) -> bytes:
    """Read up to MAX_BODY (the app-wide limit is sized for WeCom callbacks, not CRM batches)."""
    body = await request.content.read(MAX_BODY + 1)
    if len(body) > MAX_BODY:
        raise AuthError(413, f"body larger than {MAX_BODY} bytes; send smaller batches")
    return body


def _parse(body: bytes, key: str, model: type[BaseModel]) -> tuple[list[Any], list[str]]:
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise AuthError(400, f"body is not JSON: {exc}") from None
    items = data.get(key) if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise AuthError(400, f'body must be {{"{key}": [...]}}')
    if len(items) > MAX_RECORDS:
        raise AuthError(400, f"at most {MAX_RECORDS} {key} per request")
    good, errors = [], []
    for i, item in enumerate(items):
        try:
            good.append(model.model_validate(item))
        except ValidationError as exc:
            errors.append(f"{key}[{i}]: {explain(exc)}")
    return good, errors


def _endpoint(runtime: Runtime, key: str, model: type[BaseModel], storer: Storer,
              ) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handle(request: web.Request) -> web.Response:
        crm = runtime.settings.crm
        try:
            body = await _read_body(request)
            verify(crm.hmac_secret.get_secret_value(), request.headers.get(TIMESTAMP_HEADER),
                   request.headers.get(SIGNATURE_HEADER), body, runtime.clock.now().timestamp(),
                   crm.replay_window_s)
            records, errors = _parse(body, key, model)
        except AuthError as exc:
            return _error(exc.status, str(exc))
        if errors:
            return _error(400, f"{len(errors)} invalid record(s); nothing stored", details=errors[:100])
        now = runtime.clock.now()
        async with runtime.sessions() as session, session.begin():
            result = await storer(session, runtime.inbox, records, now)
        runtime.inbox.wake()
        return web.json_response({"accepted": result.accepted, "changed": len(result.changed),
                                  "new_events": result.new_events})

    return handle


def install_crm_api(app: web.Application) -> None:
    """Add the CRM routes and register the webhook executor with the runtime's outbox."""
    from scrm.app import RUNTIME
    from scrm.crm.webhook import register

    runtime = app[RUNTIME]
    register(runtime.outbox, runtime.settings.crm)
    routes: Sequence[tuple[str, str, type[BaseModel], Storer]] = (
        ("/crm/v1/customers:batchUpsert", "customers", CustomerRecord, store.upsert_customers),
        ("/crm/v1/events", "events", EventRecord, store.add_events),
        ("/crm/v1/bindings", "bindings", BindingRecord, store.add_bindings),
    )
    for path, key, model, storer in routes:
        app.router.add_post(path, _endpoint(runtime, key, model, storer))
