"""The async WeCom API client: one aiohttp session, access token, retries, rate limits.

Every typed method (mixins in :mod:`api_contacts`, :mod:`api_directory`, :mod:`api_groups`,
:mod:`api_messages`) goes through :meth:`WeComClient.call`, which the outbox also uses with a
stored ``api`` + ``body``.

What ``call`` does, in order:

1. paces the call: per-member app-message budget (message/send, once per logical call), then
   the per-API bucket (before every attempt);
2. adds the access token (refreshed single-flight before expiry);
3. sends, and classifies the outcome:

   ====================================  =================================================
   connect failed, nothing written        retry with backoff, then ConnectionFailedError
   written, no (usable) reply             AmbiguousCallError at once — never retried here
   errcode 40014/42001/41001              refresh the token, retry once
   errcode -1                             retry with exponential backoff + jitter
   errcode 45009/45033                    pause + slow the shared bucket, retry (bounded)
   any other errcode                      WeComError (errcode, errmsg)
   ====================================  =================================================

"Written" is known exactly from aiohttp's ``on_request_headers_sent`` trace signal, so a refused
connection is safe to retry while a timeout after sending is not. Tokens and the corp secret never
reach logs or exception messages: URLs are masked and aiohttp exceptions are not chained.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import SimpleNamespace, TracebackType
from typing import Any
from urllib.parse import urlencode

import aiohttp
from yarl import URL

from scrm.adapters.wecom.api_base import JsonDict
from scrm.adapters.wecom.api_contacts import ContactsApi
from scrm.adapters.wecom.api_directory import DirectoryApi
from scrm.adapters.wecom.api_groups import GroupsApi
from scrm.adapters.wecom.api_messages import MessagesApi
from scrm.adapters.wecom.errors import (
    AmbiguousCallError,
    ConnectionFailedError,
    TokenUnavailableError,
    WeComClientError,
    WeComHTTPError,
    error_for,
    is_rate_limited,
    is_retryable,
    is_token_error,
    mask_secrets,
)
from scrm.adapters.wecom.models import GetTokenResponse
from scrm.adapters.wecom.models_messages import MediaType, UploadMediaResponse
from scrm.adapters.wecom.ratelimit import MESSAGE_SEND_API, RateLimiter, members_of, normalize_api
from scrm.adapters.wecom.token import FetchedToken, TokenManager, TokenStore
from scrm.kernel.clock import Clock, SystemClock
from scrm.kernel.config import WeComSettings

log = logging.getLogger("scrm.adapters.wecom.api")

GETTOKEN_API = "gettoken"


@dataclass(frozen=True)
class RetryPolicy:
    """Bounds for the retries the client does on its own (all are safe: nothing took effect)."""

    #: Total attempts for errcode -1 and for connections that failed before sending.
    max_attempts: int = 4
    backoff_base_s: float = 0.5
    backoff_max_s: float = 8.0
    #: Fraction of each delay that is random, so instances don't retry in lockstep.
    jitter: float = 0.5
    #: Total attempts for 45009/45033 (the limiter's pause does the waiting).
    rate_limited_attempts: int = 3

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Backoff before retry number ``attempt`` (1-based)."""
        d = min(self.backoff_max_s, self.backoff_base_s * 2.0 ** (attempt - 1))
        return d * (1.0 - self.jitter * rng.random())


FormFactory = Callable[[], aiohttp.FormData]


class _Sent(SimpleNamespace):
    """Per-request trace context: did aiohttp start writing the request?"""

    sent: bool = False


async def _on_headers_sent(_session: aiohttp.ClientSession, ctx: SimpleNamespace,
                           _params: aiohttp.TraceRequestHeadersSentParams) -> None:
    # Fired just before the request head is written: from here on the call is ambiguous.
    state = ctx.trace_request_ctx
    if isinstance(state, _Sent):
        state.sent = True


class WeComClient(ContactsApi, DirectoryApi, GroupsApi, MessagesApi):
    """Async client for one self-built WeCom app.

    Use as ``async with WeComClient(settings, token_store=...) as wecom:`` or call :meth:`close`.
    One instance per process: its rate limiter and token lock are what make limits and
    single-flight refresh hold across coroutines.
    """

    def __init__(self, settings: WeComSettings, *, token_store: TokenStore, clock: Clock | None = None,
                 limiter: RateLimiter | None = None, retry: RetryPolicy | None = None, app: str | None = None,
                 refresh_margin_s: float = 300.0, rng: random.Random | None = None) -> None:
        self._settings = settings
        self._clock: Clock = clock or SystemClock()
        self._base = settings.api_base.rstrip("/")
        self._timeout_s = settings.request_timeout_s
        self.limiter = limiter or RateLimiter.from_settings(self._clock, settings)
        self.retry = retry or RetryPolicy()
        self._rng = rng or random.Random()
        self.tokens = TokenManager(token_store, self._fetch_token, self._clock,
                                   app=app or f"{settings.corp_id}:{settings.agent_id}",
                                   refresh_margin_s=refresh_margin_s)
        self._session: aiohttp.ClientSession | None = None

    @property
    def agent_id(self) -> int:
        return self._settings.agent_id

    # -- lifecycle ---------------------------------------------------------------------------

    def _http(self) -> aiohttp.ClientSession:
        # Created lazily: a ClientSession must be made inside the running event loop.
        if self._session is None or self._session.closed:
            trace = aiohttp.TraceConfig()
            trace.on_request_headers_sent.append(_on_headers_sent)
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=self._timeout_s),
                trace_configs=[trace], raise_for_status=False)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> WeComClient:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    # -- public calls ------------------------------------------------------------------------

    async def call(self, api: str, body: Mapping[str, Any] | None = None, *, method: str = "POST",
                   params: Mapping[str, Any] | None = None) -> JsonDict:
        """Call ``/cgi-bin/<api>`` and return the reply dict (errcode 0).

        ``api`` is the path after ``/cgi-bin/``, e.g. ``externalcontact/mark_tag`` (the key of
        ``api_limits_per_minute``). POST sends ``body`` as UTF-8 JSON; ``params`` go to the query.
        Raises a :class:`~scrm.adapters.wecom.errors.WeComClientError`; check ``may_have_taken_effect``.
        """
        return await self._call(api, method=method, params=params, body=body)

    async def gettoken(self) -> GetTokenResponse:
        """GET gettoken with the configured corp id and secret (the token manager's source)."""
        params = {"corpid": self._settings.corp_id, "corpsecret": self._settings.secret.get_secret_value()}
        data = await self._call(GETTOKEN_API, method="GET", params=params, auth=False)
        return GetTokenResponse.model_validate(data)

    async def upload_media(self, media_type: MediaType, filename: str, content: bytes, *,
                           content_type: str = "application/octet-stream") -> UploadMediaResponse:
        """media/upload (multipart field ``media``); the ``media_id`` is valid for 3 days."""
        def form() -> aiohttp.FormData:
            # A FormData can be sent once; each attempt gets a fresh one.
            fd = aiohttp.FormData()
            fd.add_field("media", content, filename=filename, content_type=content_type)
            return fd

        data = await self._call("media/upload", method="POST", params={"type": media_type}, form=form)
        return UploadMediaResponse.model_validate(data)

    async def upload_attachment(self, media_type: MediaType, filename: str, content: bytes, *,
                                content_type: str = "application/octet-stream",
                                attachment_type: int = 1) -> UploadMediaResponse:
        """media/upload_attachment: media for 朋友圈 (``attachment_type`` 1; 2 商品图册), the
        only ids add_moment_task takes; valid for 3 days like media/upload's."""
        def form() -> aiohttp.FormData:
            fd = aiohttp.FormData()
            fd.add_field("media", content, filename=filename, content_type=content_type)
            return fd

        data = await self._call("media/upload_attachment", method="POST",
                                params={"media_type": media_type, "attachment_type": attachment_type}, form=form)
        return UploadMediaResponse.model_validate(data)

    # -- machinery ---------------------------------------------------------------------------

    async def _fetch_token(self) -> FetchedToken:
        resp = await self.gettoken()
        return FetchedToken(token=resp.access_token, expires_in=resp.expires_in)

    async def _token(self, api: str, rejected: str | None) -> str:
        """A token for calling ``api``; failing to get one means the call itself was never sent."""
        try:
            if rejected is not None:
                return await self.tokens.invalidate(rejected)
            return await self.tokens.get()
        except WeComClientError as exc:
            # Whatever went wrong with gettoken, ``api`` itself never ran: the outbox must not
            # mark it unknown (gettoken dropped) or failed (gettoken refused).
            raise TokenUnavailableError(f"{api}: no access token ({exc})", api=api,
                                        errcode=getattr(exc, "errcode", None)) from None

    async def _call(self, api: str, *, method: str, params: Mapping[str, Any] | None,
                    body: Mapping[str, Any] | None = None, form: FormFactory | None = None,
                    auth: bool = True) -> JsonDict:
        api = normalize_api(api)
        if api == MESSAGE_SEND_API and body is not None:
            # Once per logical call: a retry after -1/45009 was not delivered, so it costs nothing.
            await self.limiter.acquire_members(members_of(body.get("touser")), api=api)
        busy = rate_limited = 0
        token: str | None = None
        rejected: str | None = None
        while True:
            await self.limiter.acquire(api)
            query = dict(params or {})
            if auth:
                token = await self._token(api, rejected)
                query["access_token"] = token
            attempt = busy + rate_limited + 1
            try:
                data = await self._send(api, method, query, body, form, attempt)
            except ConnectionFailedError as exc:
                busy += 1
                if busy >= self.retry.max_attempts:
                    raise
                await self._backoff(api, busy, str(exc))
                continue
            errcode = _errcode(data)
            if errcode == 0:
                self.limiter.record_success(api)
                return data
            errmsg = str(data.get("errmsg", ""))
            if auth and is_token_error(errcode) and rejected is None:
                log.info("access token rejected; refreshing", extra={"api": api, "errcode": errcode})
                rejected = token
                continue
            if is_retryable(errcode):
                busy += 1
                if busy < self.retry.max_attempts:
                    await self._backoff(api, busy, f"errcode {errcode}")
                    continue
            elif is_rate_limited(errcode):
                rate_limited += 1
                pause = self.limiter.penalize(api)
                if rate_limited < self.retry.rate_limited_attempts:
                    log.warning("rate limited by WeCom; pausing", extra={
                        "api": api, "errcode": errcode, "pause_s": pause, "attempt": attempt})
                    continue
            raise error_for(errcode, errmsg, api)

    async def _backoff(self, api: str, attempt: int, reason: str) -> None:
        delay = self.retry.delay(attempt, self._rng)
        log.warning("retrying WeCom call", extra={"api": api, "attempt": attempt, "delay_s": round(delay, 3),
                                                  "reason": mask_secrets(reason)})
        await self._clock.sleep(delay)

    async def _send(self, api: str, method: str, query: dict[str, Any], body: Mapping[str, Any] | None,
                    form: FormFactory | None, attempt: int) -> JsonDict:
        """One HTTP exchange; raises ConnectionFailedError / AmbiguousCallError / WeComHTTPError."""
        # The query is encoded here, once: aiohttp's ``params=`` merges it through yarl, a third
        # of the client's own cost of a call at WeCom's 10,000 calls a minute.
        url = URL(f"{self._base}/cgi-bin/{api}?{urlencode(query)}" if query else f"{self._base}/cgi-bin/{api}",
                  encoded=True)
        state = _Sent()
        kwargs: dict[str, Any] = {}
        if form is not None:
            kwargs["data"] = form()
        elif method.upper() != "GET":
            kwargs["data"] = json.dumps(body or {}, ensure_ascii=False).encode()
            kwargs["headers"] = {"Content-Type": "application/json; charset=utf-8"}
        start = time.perf_counter()
        try:
            async with asyncio.timeout(self._timeout_s):
                async with self._http().request(method, url, trace_request_ctx=state,
                                                **kwargs) as resp:
                    status = resp.status
                    raw = await resp.read()
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            elapsed = _ms(start)
            reason = f"{type(exc).__name__}: {mask_secrets(str(exc))}".rstrip(": ")
            if not state.sent:
                log.warning("WeCom call not sent", extra={"api": api, "elapsed_ms": elapsed, "attempt": attempt,
                                                          "reason": reason})
                raise ConnectionFailedError(f"{api}: not sent ({reason})", api=api) from None
            log.error("WeCom call sent but no reply; outcome unknown", extra={
                "api": api, "elapsed_ms": elapsed, "attempt": attempt, "reason": reason})
            raise AmbiguousCallError(f"{api}: sent but no reply ({reason})", api=api, elapsed_ms=elapsed) from None
        elapsed = _ms(start)
        if status >= 500:
            log.error("WeCom call got HTTP %s; outcome unknown", status,
                      extra={"api": api, "elapsed_ms": elapsed, "attempt": attempt})
            raise AmbiguousCallError(f"{api}: HTTP {status}", api=api, elapsed_ms=elapsed)
        if status != 200:
            log.error("WeCom call got HTTP %s", status, extra={"api": api, "elapsed_ms": elapsed})
            raise WeComHTTPError(status, api=api)
        try:
            data = json.loads(raw)
        except ValueError:
            data = None
        if not isinstance(data, dict):
            log.error("WeCom reply is not a JSON object; outcome unknown", extra={"api": api, "elapsed_ms": elapsed})
            raise AmbiguousCallError(f"{api}: reply is not a JSON object", api=api, elapsed_ms=elapsed)
        errcode = _errcode(data)
        log.log(logging.DEBUG if errcode == 0 else logging.WARNING, "WeCom call %s errcode %s", api, errcode,
                extra={"api": api, "errcode": errcode, "elapsed_ms": elapsed, "attempt": attempt})
        return data


def _errcode(data: Mapping[str, Any]) -> int:
    try:
        return int(data.get("errcode", 0) or 0)
    except (TypeError, ValueError):
        return -1


def _ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000.0, 1)
