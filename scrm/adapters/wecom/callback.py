"""The WeCom callback endpoint: verify, decrypt, store durably, acknowledge.

Nothing else happens inside the request (ARCHITECTURE.md §3): any failure is a 4xx with a
one-line reason, logged, and nothing is stored; success is HTTP 200 with an empty body, sent
only after the event has committed. A duplicate delivery (WeCom retries up to three times)
also gets 200 and is not stored again.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from scrm.adapters.wecom.crypto import CryptoError, WeComCrypto
from scrm.adapters.wecom.events import EventHeader, XmlError, header_of, parse_xml
from scrm.kernel.clock import Clock

log = logging.getLogger("scrm.adapters.wecom.callback")

StoreFn = Callable[[str, EventHeader], Awaitable[bool]]


@dataclass(frozen=True)
class CallbackConfig:
    crypto: WeComCrypto
    max_body_bytes: int
    timestamp_window_s: int  # 0 = no freshness check


class Rejected(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def _param(request: web.Request, name: str) -> str:
    # aiohttp URL-decodes the query string (%2B → "+") and keeps a literal "+" as "+".
    value = request.rel_url.query.get(name)
    if not value:
        raise Rejected(400, f"missing query parameter {name}")
    return value


def _check_timestamp(timestamp: str, clock: Clock, window_s: int) -> None:
    if not timestamp.isdigit():
        raise Rejected(400, "timestamp is not a number")
    if window_s and abs(clock.now().timestamp() - int(timestamp)) > window_s:
        raise Rejected(403, "timestamp outside the replay window")


async def _read_limited(request: web.Request, limit: int) -> bytes:
    # aiohttp counts while reading (chunked bodies carry no Content-Length) and stops at the
    # app's client_max_size; the view's own limit is checked again in case the app's is larger.
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise Rejected(413, "body too large") from None
    if len(body) > limit:
        raise Rejected(413, "body too large")
    return body


def _reject(request: web.Request, err: Rejected) -> web.Response:
    log.warning("callback rejected: %s", err.reason,
                extra={"status": err.status, "method": request.method, "remote": request.remote})
    return web.Response(status=err.status, text=err.reason + "\n")


def _crypto_status(err: CryptoError) -> int:
    return 403 if err.code in (-40001, -40005) else 400


class CallbackView:
    """GET = URL verification, POST = an encrypted event. Bound to ``/wecom/callback``."""

    def __init__(self, config: CallbackConfig, store: StoreFn, clock: Clock) -> None:
        self.config = config
        self.store = store
        self.clock = clock

    async def get(self, request: web.Request) -> web.Response:
        try:
            sig, ts, nonce = _param(request, "msg_signature"), _param(request, "timestamp"), _param(request, "nonce")
            echostr = _param(request, "echostr")
            _check_timestamp(ts, self.clock, 0)
            try:
                plain = self.config.crypto.verify_and_decrypt(sig, ts, nonce, echostr)
            except CryptoError as exc:
                raise Rejected(_crypto_status(exc), exc.reason) from None
        except Rejected as err:
            return _reject(request, err)
        log.info("callback URL verified")
        # Plain text, no quotes, no BOM, no newline: WeCom compares it byte for byte.
        return web.Response(body=plain.encode("utf-8"), content_type="text/plain")

    async def post(self, request: web.Request) -> web.Response:
        try:
            raw, header = await self._verify(request)
        except Rejected as err:
            return _reject(request, err)
        try:
            is_new = await self.store(raw, header)
        except Exception:
            # Not durable, so not acknowledged: WeCom will deliver it again.
            log.exception("could not store callback; answering 503 so WeCom retries")
            return web.Response(status=503, text="storage unavailable\n")
        # Stored events are logged again when processed; per-request INFO lines cost ~20 µs each,
        # and even a DEBUG line that is dropped built its fields first: ask before building.
        level = logging.DEBUG if is_new else logging.INFO
        if log.isEnabledFor(level):
            log.log(level, "callback stored" if is_new else "duplicate callback ignored",
                    extra={"dedup_key": header.dedup_key, "event": header.event, "change_type": header.change_type})
        return web.Response(status=200, body=b"")

    async def _verify(self, request: web.Request) -> tuple[str, EventHeader]:
        sig, ts, nonce = _param(request, "msg_signature"), _param(request, "timestamp"), _param(request, "nonce")
        _check_timestamp(ts, self.clock, self.config.timestamp_window_s)
        if request.content_length is not None and request.content_length > self.config.max_body_bytes:
            raise Rejected(413, "body too large")
        body = await _read_limited(request, self.config.max_body_bytes)
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise Rejected(400, "body is not valid UTF-8") from None
        try:
            envelope = parse_xml(text)
        except XmlError as exc:
            raise Rejected(400, f"envelope: {exc}") from None
        encrypted = envelope.get("Encrypt")
        if not isinstance(encrypted, str) or not encrypted:
            raise Rejected(400, "envelope has no Encrypt element")
        try:
            plain = self.config.crypto.verify_and_decrypt(sig, ts, nonce, encrypted)
        except CryptoError as exc:
            raise Rejected(_crypto_status(exc), exc.reason) from None
        try:
            header = header_of(parse_xml(plain))
        except XmlError as exc:
            raise Rejected(400, f"event: {exc}") from None
        return plain, header


def add_routes(app: web.Application, view: CallbackView, path: str = "/wecom/callback") -> None:
    app.router.add_get(path, view.get)
    app.router.add_post(path, view.post)
