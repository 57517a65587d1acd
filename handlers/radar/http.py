"""``GET /r/{token}``: verify, find the material's URL, queue the click, redirect.

Only verifying and storing happen in the request (ARCHITECTURE §1): the click becomes an
internal ``radar.click`` event through the inbox's group-commit writer, and handlers do the
rest. The target comes from the playbook, never from the request: no open redirect. With
WeCom OAuth enabled, the first hop goes to WeCom's authorize page to learn who is looking.

Durability trade-off: a WeCom callback is acknowledged only after its commit, because WeCom
would otherwise consider it delivered; nobody retries a click, and the person waiting on it is
a customer looking at a blank page. So the click is queued for the same group-commit writer
and the 302 goes out at once: the redirect never waits for the database. The row commits with
the next batch (some 20 ms later: the writer lets rows nobody awaits gather into bigger, cheaper
batches), and a graceful stop flushes the queue before the process exits,
so clicks are lost only by a crash inside that window or a failed batch (logged with the
count). The queue is bounded (``radar.record_queue_max``): a database that cannot keep up
costs clicks (logged), never memory or redirects.

The hot path is lean on purpose (the bench compares it with a bare aiohttp 302): the token's
cipher is keyed once per key (opening a token costs ~3 µs), the material → URL map is rebuilt
only when the playbook object changes, the event's JSON is written directly (no pydantic model
per click), and the inbox key is a per-process prefix plus a counter rather than a fresh UUID.
"""

from __future__ import annotations

import itertools
import json
import logging
import uuid
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from aiohttp import hdrs, web

from handlers.radar.events import RadarClickEvent
from handlers.radar.links import PATH_PREFIX, SURVEY_PATH, LinkMaker
from handlers.radar.settings import radar_settings
from handlers.radar.tokens import Claims
from scrm.playbook import Playbook

if TYPE_CHECKING:
    from scrm.kernel.service import Runtime

log = logging.getLogger("handlers.radar.http")

# state must be a-zA-Z0-9 (≤128 B) for WeCom; we need nothing back from it.
OAUTH_STATE = "radar"
# A full click queue is logged on its first refusal and then every this many.
DROP_LOG_EVERY = 1000

_NOT_FOUND = "not found"
# json.dumps with options builds a new encoder per call; one encoder serves every click.
_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
# The stored JSON around the click's time and payload (key order as ``click_event_json`` writes it).
_HEAD = _JSON.encode({"source": RadarClickEvent.SOURCE, "kind": RadarClickEvent.KIND})[:-1] + ',"at":"'
_MID = '","payload":'
# Genuine tokens seen lately (token → its claims and its token-path payload JSON): a link is
# clicked again and again, and re-opening it is the same work with the same answer. Forged or
# tampered tokens are never kept (junk cannot evict the real ones); beyond this many it starts over.
SEEN_MAX = 4096


def link_targets(playbook: Playbook | None, public_url: str = "") -> dict[str, str]:
    """Material id → its own URL, for every link material (the only places a click may go).

    A survey material's target is the service's feedback form, to which the click's token is
    appended (the form is personal: the token names the customer)."""
    if playbook is None:
        return {}
    form = public_url.rstrip("/") + SURVEY_PATH
    return {mid: form if m.survey is not None else str(m.link.url)
            for mid, m in playbook.materials.items() if m.link is not None}


def click_event_json(at: str, payload: dict[str, Any]) -> str:
    """The stored JSON of a :class:`RadarClickEvent` (``InternalEvent`` form), written without building
    a pydantic model; the inbox parses it back into ``RadarClickEvent`` (tested)."""
    return _click_json(at, _JSON.encode(payload))


def _click_json(at: str, payload_json: str) -> str:
    # ``at`` is an ISO timestamp: digits, "-", ":", ".", "+" and "T", nothing JSON would escape.
    return _HEAD + at + _MID + payload_json + "}"


def _payload(claims: Claims, customer: str | None, openid: str | None, via: str) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "token_id": claims.token_id, "material": claims.material, "sender": claims.sender,
        "occurrence": claims.occurrence, "customer": customer, "openid": openid, "via": via,
    }
    if customer:
        payload["subject"] = ["customer", customer]  # the timeline recorder reads this
    return payload


def _redirect(target: str) -> web.Response:
    # A plain response, not ``raise HTTPFound``: the exception path costs ~10 µs a click.
    return web.Response(status=302, headers={hdrs.LOCATION: target})


class ClickView:
    """The click endpoint of one service instance (``runtime`` is a ``scrm.kernel.service.Runtime``)."""

    def __init__(self, runtime: Any) -> None:
        self.runtime = runtime
        self.settings = runtime.settings
        self.links = LinkMaker(self.settings)
        self.radar = radar_settings(self.settings)  # the view's settings never change under it
        self._seen: dict[str, tuple[Claims, str]] = {}
        self._targets_from: Playbook | None = None
        self._targets: dict[str, str] = {}
        self._surveys: frozenset[str] = frozenset()  # survey materials: their target takes the token
        # One click = one inbox event, never deduplicated: unique across instances and restarts.
        self._key_prefix = f"{uuid.uuid4().hex}:"
        self._seq = itertools.count(1)
        self.dropped = 0

    def target_of(self, claims: Claims) -> str | None:
        """The material's own URL from the current playbook; None when it is not a link material."""
        playbook = self.runtime.playbook.current
        if playbook is not self._targets_from:  # a reload swaps the object: rebuild once
            self._targets = link_targets(playbook, self.settings.server.public_url)
            self._surveys = frozenset(mid for mid, m in (playbook.materials.items() if playbook else ())
                                      if m.survey is not None)
            self._targets_from = playbook
        return self._targets.get(claims.material)

    def authorize_url(self, token: str) -> str:
        """WeCom OAuth (snsapi_base): back to this link with ``code`` once WeCom knows the viewer."""
        w = self.settings.wecom
        back = self.settings.server.public_url.rstrip("/") + PATH_PREFIX + token + "?oauth=1"
        query = urlencode({"appid": w.corp_id, "redirect_uri": back, "response_type": "code",
                           "scope": "snsapi_base", "state": OAUTH_STATE, "agentid": w.agent_id})
        return f"{self.radar.oauth_authorize_url}?{query}#wechat_redirect"

    def opened(self, token: str) -> tuple[Claims, str] | None:
        """A genuine token's claims and the payload JSON of its click without OAuth; None if not genuine."""
        seen = self._seen.get(token)
        if seen is not None:
            return seen
        claims = self.links.claims_of(token)
        if claims is None:
            return None
        if len(self._seen) >= SEEN_MAX:
            self._seen.clear()
        seen = self._seen[token] = (claims, _JSON.encode(_payload(claims, claims.customer, None, "token")))
        return seen

    async def handle(self, request: web.Request) -> web.StreamResponse:
        token = request.match_info["token"]
        seen = self.opened(token)
        target = self.target_of(seen[0]) if seen is not None else None
        if seen is None or target is None:
            # One answer for forged, tampered and retired links: nothing to learn from it.
            return web.Response(status=404, text=_NOT_FOUND)
        claims = seen[0]
        if claims.material in self._surveys:
            target += token
        if not self.radar.oauth_enabled:
            self._offer(_click_json(self.runtime.clock.now().isoformat(), seen[1]))
            return _redirect(target)
        code = request.query.get("code")
        if not code and "oauth" not in request.query:
            return _redirect(self.authorize_url(token))
        customer, openid, via = claims.customer, None, "token"
        if code:
            identity = await self._identify(code)
            if identity is not None:
                if identity.get("member"):
                    return _redirect(target)  # a member checking their own link: not an open
                customer, openid, via = identity.get("customer"), identity.get("openid"), "oauth"
        self.record(claims, customer, openid, via)
        return _redirect(target)

    async def _identify(self, code: str) -> dict[str, str | None] | None:
        """auth/getuserinfo; None when WeCom refuses (the token's customer is used instead)."""
        try:
            info = await self.runtime.wecom.get_user_info(code)
        except Exception as exc:  # an expired/used code or WeCom down must not break the link
            log.warning("radar oauth failed; using the token's customer", extra={"error": str(exc)})
            return None
        if info.userid:
            return {"member": info.userid}
        return {"customer": info.external_userid or None, "openid": info.openid or None}

    def record(self, claims: Claims, customer: str | None, openid: str | None, via: str) -> bool:
        """Queue the click as an inbox event without waiting for its commit; False when dropped."""
        raw = click_event_json(self.runtime.clock.now().isoformat(), _payload(claims, customer, openid, via))
        return self._offer(raw)

    def _offer(self, raw: str) -> bool:
        if self.runtime.inbox.offer_internal_json(RadarClickEvent.SOURCE, RadarClickEvent.KIND,
                                                  f"{self._key_prefix}{next(self._seq)}", raw,
                                                  limit=self.radar.record_queue_max):
            return True
        self.dropped += 1
        if self.dropped % DROP_LOG_EVERY == 1:
            log.error("radar clicks not recorded: the write queue is full or stopped",
                      extra={"dropped_total": self.dropped})
        return False


def install_radar(app: web.Application, runtime: Runtime) -> None:
    """Add ``GET /r/{token}`` to the service app."""
    view = ClickView(runtime)
    app.router.add_get(PATH_PREFIX + "{token}", view.handle)
