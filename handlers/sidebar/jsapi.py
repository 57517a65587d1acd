"""The app's jsapi ticket and the agentConfig signature the page hands to ``ww.register``.

WeCom's JS-SDK answers a page only after ``agentConfig`` (``ww.register``'s
``getAgentConfigSignature``) proved the page belongs to the app: the server signs the page's
URL with the app's jsapi ticket (``GET cgi-bin/ticket/get?type=agent_config``), sha1 hex of
``jsapi_ticket=…&noncestr=…&timestamp=…&url=…`` in that order, the URL without its #fragment.

The ticket is fetched like the access token and kept with it (the ``access_token`` table under
its own key, refreshed single-flight before it expires, shared by every instance): WeCom allows
only 100 fetches an hour per app, so fetching per page view would lock the sidebar out.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING

from scrm.adapters.wecom.token import DbTokenStore, FetchedToken, TokenManager

if TYPE_CHECKING:
    from scrm.kernel.service import Runtime

TICKET_API = "ticket/get"


def signature(ticket: str, noncestr: str, timestamp: int, url: str) -> str:
    plain = f"jsapi_ticket={ticket}&noncestr={noncestr}&timestamp={timestamp}&url={url}"
    return hashlib.sha1(plain.encode()).hexdigest()


@dataclass(frozen=True)
class Signed:
    """What ``getAgentConfigSignature`` returns to the JS-SDK."""

    timestamp: int
    nonce: str
    signature: str

    def as_json(self) -> dict[str, object]:
        return {"timestamp": self.timestamp, "nonceStr": self.nonce, "signature": self.signature}


class Tickets:
    """The app's agent_config ticket, cached, and signatures made with it."""

    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime
        w = runtime.settings.wecom
        self._manager = TokenManager(DbTokenStore(runtime.sessions, runtime.clock), self._fetch, runtime.clock,
                                     app=f"jsapi:{w.corp_id}:{w.agent_id}"[:64])

    async def _fetch(self) -> FetchedToken:
        reply = await self._runtime.wecom.call(TICKET_API, method="GET", params={"type": "agent_config"})
        return FetchedToken(token=str(reply["ticket"]), expires_in=int(reply.get("expires_in") or 7200))

    async def sign(self, url: str) -> Signed:
        """Sign ``url`` (the page's address without #fragment) now, with a fresh nonce."""
        ticket = await self._manager.get()
        timestamp = int(self._runtime.clock.now().timestamp())
        nonce = secrets.token_urlsafe(12)
        return Signed(timestamp, nonce, signature(ticket, nonce, timestamp, url))
