"""What the sandbox holds for WeCom's JS-SDK: the app's jsapi ticket, and the emulated webviews
(a member's chat toolbar opened beside one customer or one customer group).

WeCom's side of the JS-SDK, as the sidebar meets it:

* ``GET /cgi-bin/ticket/get?type=agent_config`` gives the app's jsapi ticket (7200 s; the same
  ticket while it is valid; at most 100 fetches an hour per app, else 45009), which the server
  uses to sign the page's ``agentConfig``;
* the webview's ``ww`` object checks that signature — sha1 of
  ``jsapi_ticket=…&noncestr=…&timestamp=…&url=…`` — before any API answers, then tells the page
  who is in the chat (``getContext``, ``getCurExternalContact``, ``getCurExternalChat``) and
  puts messages into the chat (``sendChatMessage``).

The sandbox cannot be WeCom's app, so a webview is opened by a harness URL
(``/sandbox/webview?member=…&customer=…&target=…``, see ``server_jssdk``) that remembers here
who is looking at which chat, under a cookie the harness script (``/sandbox/ww.js``) and the
OAuth page read back. Times are POSIX seconds, as everywhere in the sandbox state.
"""

from __future__ import annotations

import hashlib
import secrets
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Literal

TICKET_TTL_S = 7200.0
TICKETS_PER_HOUR = 100  # per app (PROTOCOL.md §7: jsapi_ticket 100/h per app)
#: The cookie naming the webview a browser plays (set by ``/sandbox/webview``).
WEBVIEW_COOKIE = "sandbox_webview"

Entry = Literal["single_chat_tools", "group_chat_tools"]


def agent_config_signature(ticket: str, noncestr: str, timestamp: str, url: str) -> str:
    """WeCom's JS-SDK signature: sha1 hex of the four fields in this order, joined raw."""
    plain = f"jsapi_ticket={ticket}&noncestr={noncestr}&timestamp={timestamp}&url={url}"
    return hashlib.sha1(plain.encode()).hexdigest()


@dataclass
class Ticket:
    value: str
    issued_at: float
    ttl_s: float = TICKET_TTL_S

    def valid(self, now: float) -> bool:
        return now < self.issued_at + self.ttl_s


@dataclass
class Webview:
    """A chat toolbar opened by ``member`` beside one customer (1:1) or one group chat."""

    id: str
    member: str
    entry: Entry
    customer: str = ""
    chat: str = ""
    #: Set once the page's agentConfig signature checked out: the other APIs answer only then.
    configured: bool = False


@dataclass
class ChatSend:
    """A ``sendChatMessage`` the page made (what the member would see put into the chat)."""

    webview: str
    member: str
    customer: str
    chat: str
    message: dict[str, Any]
    at: float
    #: The uploaded file an image, video or file message names by its mediaid ('' otherwise).
    media_file: str = ""


@dataclass
class SignatureCheck:
    """One agentConfig the harness checked, and whether the signature held."""

    webview: str
    url: str
    ok: bool
    at: float


@dataclass
class JsSdk:
    """The JS-SDK part of a sandbox tenant (``SandboxState.jssdk``)."""

    ticket: Ticket | None = None
    fetched: deque[float] = field(default_factory=deque)
    webviews: dict[str, Webview] = field(default_factory=dict)
    checks: list[SignatureCheck] = field(default_factory=list)
    sent: list[ChatSend] = field(default_factory=list)

    def agent_ticket(self, now: float) -> Ticket | None:
        """The app's ticket (a new one once the last expired); None over the hourly limit."""
        while self.fetched and self.fetched[0] <= now - 3600:
            self.fetched.popleft()
        if len(self.fetched) >= TICKETS_PER_HOUR:
            return None
        self.fetched.append(now)
        if self.ticket is None or not self.ticket.valid(now):
            self.ticket = Ticket("sbjsapi" + secrets.token_urlsafe(32), now)
        return self.ticket

    def check(self, webview: Webview, *, url: str, noncestr: str, timestamp: str, signature: str,
              now: float) -> bool:
        """Does ``signature`` sign ``url`` with the live ticket? Marks the webview configured."""
        ticket = self.ticket
        ok = (ticket is not None and ticket.valid(now) and bool(noncestr) and bool(timestamp)
              and secrets.compare_digest(signature, agent_config_signature(ticket.value, noncestr, timestamp, url)))
        self.checks.append(SignatureCheck(webview.id, url, ok, now))
        webview.configured = webview.configured or ok
        return ok

    def open(self, member: str, *, customer: str = "", chat: str = "") -> Webview:
        entry: Entry = "single_chat_tools" if customer else "group_chat_tools"
        view = Webview(id="wv" + secrets.token_hex(8), member=member, entry=entry, customer=customer, chat=chat)
        self.webviews[view.id] = view
        return view

    def sends_to(self, *, customer: str = "", chat: str = "") -> list[ChatSend]:
        """What the pages put into the chat with ``customer`` (or group ``chat``), oldest first."""
        return [s for s in self.sent if (customer and s.customer == customer) or (chat and s.chat == chat)]
