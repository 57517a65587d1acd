"""The CRM's HTTP API on the service: the bank's systems push customers, events and bindings.

    POST /crm/v1/customers:batchUpsert   {"customers": [CustomerRecord, ...]}
    POST /crm/v1/events                  {"events": [EventRecord, ...]}
    POST /crm/v1/bindings                {"bindings": [BindingRecord, ...]}
    POST /crm/v1/groups                  {"groups": [GroupRecord, ...]}  (employer, payday)

Every request is HMAC-signed (:mod:`handlers.crm.auth`). A body is read whole, however it arrives
(chunked or not), up to ``MAX_BODY``; past it the answer is 413. A batch is all or nothing: any
invalid record (:mod:`handlers.crm.records` says what is invalid) rejects the request with 400 and
every record's error (``customers[3]: crm_id: ...``), so the sender fixes and resends it whole;
so does one ``external_userid`` given to two ``crm_id``s in one batch. Every error answer is
one line of JSON. Verify, store, acknowledge: the tag sync runs later from the inbox, never
inside the request.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from aiohttp import web
from pydantic import BaseModel, ValidationError

from handlers.crm import store
from handlers.crm.auth import SIGNATURE_HEADER, TIMESTAMP_HEADER, AuthError, verify
from handlers.crm.records import (
    BindingRecord,
    CustomerRecord,
    EventRecord,
    GroupRecord,
    contact_conflicts,
    explain,
    loads,
    shape_problem,
)
from handlers.crm.settings import crm_settings

if TYPE_CHECKING:
    from scrm.kernel.service import Runtime

MAX_BODY = 8 * 2**20
MAX_RECORDS = 5000

Storer = Callable[..., Awaitable[store.StoreResult]]


def _error(status: int, message: str, **extra: Any) -> web.Response:
    return web.json_response({"error": message, **extra}, status=status)


def _too_large() -> AuthError:
    return AuthError(413, f"body larger than {MAX_BODY} bytes; send smaller batches")


async def _read_body(request: web.Request) -> bytes:
    """The whole body, up to MAX_BODY (the app-wide limit is sized for WeCom callbacks, not CRM
    batches, so the stream is read here rather than with ``request.read()``).

    One ``read(n)`` returns only what has arrived so far; a big batch comes in many pieces, so
    read until the end, counting, and stop as soon as the limit is passed.
    """
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise _too_large()  # declared too big: refuse before reading a byte
    pieces: list[bytes] = []
    size = 0
    async for piece in request.content.iter_any():
        size += len(piece)
        if size > MAX_BODY:
            raise _too_large()
        pieces.append(piece)
    return b"".join(pieces)


def _items(body: bytes, key: str, max_records: int) -> list[Any]:
    try:
        data = loads(body)
    except ValueError as exc:  # malformed, not UTF-8, NaN/Infinity, nested past the parser
        raise AuthError(400, f"body is not JSON: {exc}") from None
    items = data.get(key) if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise AuthError(400, f'body must be {{"{key}": [...]}}')
    if len(items) > max_records:
        raise AuthError(400, f"at most {max_records} {key} per request")
    return items


async def read_signed_batch(request: web.Request, runtime: Runtime, key: str, *,
                            max_records: int = MAX_RECORDS) -> list[Any]:
    """The items of a signed CRM push ``{key: [...]}``: read whole, signature and freshness
    checked, JSON parsed strictly. Raises :class:`AuthError` (its status is the answer). For
    other features' CRM endpoints (staff directory, succession), so every push is read alike."""
    crm = crm_settings(runtime.settings)
    body = await _read_body(request)
    verify(crm.hmac_secret.get_secret_value(), request.headers.get(TIMESTAMP_HEADER),
           request.headers.get(SIGNATURE_HEADER), body, runtime.clock.now().timestamp(), crm.replay_window_s)
    return _items(body, key, max_records)


def _parse(items: list[Any], key: str, model: type[BaseModel]) -> tuple[list[BaseModel], list[str]]:
    good: list[BaseModel] = []
    errors: list[str] = []
    for i, item in enumerate(items):
        record = _record(model, item)
        if isinstance(record, str):
            errors.append(f"{key}[{i}]: {record}")
        else:
            good.append(record)
    # Checked on a valid batch only: the positions then match the records.
    return good, errors or _conflicts(key, good)


def _record(model: type[BaseModel], item: Any) -> BaseModel | str:
    """The validated record, or why it is refused (one line)."""
    problem = shape_problem(item)
    if problem:
        return problem
    try:
        return model.model_validate(item)
    except ValidationError as exc:
        return explain(exc)


def _conflicts(key: str, records: Sequence[BaseModel]) -> list[str]:
    """One contact given to two customers in one batch (customers or bindings)."""
    pairs = [(r.crm_id, r.external_userid) for r in records if isinstance(r, CustomerRecord | BindingRecord)]
    return contact_conflicts(key, pairs) if pairs else []


def _endpoint(runtime: Runtime, key: str, model: type[BaseModel], storer: Storer,
              ) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handle(request: web.Request) -> web.Response:
        try:
            records, errors = _parse(await read_signed_batch(request, runtime, key), key, model)
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


def install_crm_api(app: web.Application, runtime: Runtime) -> None:
    """Add the CRM push API's routes."""
    routes: Sequence[tuple[str, str, type[BaseModel], Storer]] = (
        ("/crm/v1/customers:batchUpsert", "customers", CustomerRecord,
         functools.partial(store.upsert_customers, tiers=crm_settings(runtime.settings).tiers)),
        ("/crm/v1/events", "events", EventRecord, store.add_events),
        ("/crm/v1/bindings", "bindings", BindingRecord, store.add_bindings),
        ("/crm/v1/groups", "groups", GroupRecord, store.upsert_groups),
    )
    for path, key, model, storer in routes:
        app.router.add_post(path, _endpoint(runtime, key, model, storer))
