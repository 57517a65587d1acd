"""``GET /r/{token}``: verify, find the material's URL, record the click, redirect.

Only verifying and storing happen in the request (ARCHITECTURE §1): the click becomes an
internal ``radar.click`` event through the inbox's group-commit writer, and handlers do the
rest. The target comes from the playbook, never from the request: no open redirect. With
WeCom OAuth enabled, the first hop goes to WeCom's authorize page to learn who is looking.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from scrm.internal import InternalEvent
from scrm.radar.links import PATH_PREFIX, LinkMaker
from scrm.radar.tokens import Claims

log = logging.getLogger("scrm.radar.views")

CLICK = "radar.click"
SOURCE = "radar"
# state must be a-zA-Z0-9 (≤128 B) for WeCom; we need nothing back from it.
OAUTH_STATE = "radar"

_NOT_FOUND = "not found"


class ClickView:
    """The click endpoint of one service instance (``runtime`` is a ``scrm.app.Runtime``)."""

    def __init__(self, runtime: Any) -> None:
        self.runtime = runtime
        self.settings = runtime.settings
        self.links = LinkMaker(self.settings)

    def target_of(self, claims: Claims) -> str | None:
        """The material's own URL from the current playbook; None when it is not a link material."""
        playbook = self.runtime.playbook.current
        material = playbook.materials.get(claims.material) if playbook is not None else None
        if material is None or material.link is None:
            return None
        return str(material.link.url)

    def authorize_url(self, token: str) -> str:
        """WeCom OAuth (snsapi_base): back to this link with ``code`` once WeCom knows the viewer."""
        w = self.settings.wecom
        back = self.settings.server.public_url.rstrip("/") + PATH_PREFIX + token + "?oauth=1"
        query = urlencode({"appid": w.corp_id, "redirect_uri": back, "response_type": "code",
                           "scope": "snsapi_base", "state": OAUTH_STATE, "agentid": w.agent_id})
        return f"{self.settings.radar.oauth_authorize_url}?{query}#wechat_redirect"

    async def handle(self, request: web.Request) -> web.StreamResponse:
        token = request.match_info["token"]
        claims = self.links.claims_of(token)
        target = self.target_of(claims) if claims is not None else None
        if claims is None or target is None:
            # One answer for forged, tampered and retired links: nothing to learn from it.
            return web.Response(status=404, text=_NOT_FOUND)
        viewer: dict[str, str | None] = {"customer": claims.customer, "openid": None, "via": "token"}
        if self.settings.radar.oauth_enabled:
            code = request.query.get("code")
            if not code and "oauth" not in request.query:
                raise web.HTTPFound(self.authorize_url(token))
            if code:
                identity = await self._identify(code)
                if identity is not None:
                    if identity.get("member"):
                        # A member checking their own link: not an open.
                        raise web.HTTPFound(target)
                    viewer = {"customer": identity.get("customer"), "openid": identity.get("openid"),
                              "via": "oauth"}
        await self._record(claims, viewer)
        raise web.HTTPFound(target)

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

    async def _record(self, claims: Claims, viewer: dict[str, str | None]) -> None:
        """Store the click as an inbox event; wait for its commit only briefly.

        On a slow or failing database the redirect still happens: losing a click beats
        leaving a customer staring at a blank page.
        """
        customer = viewer["customer"]
        payload: dict[str, Any] = {
            "token_id": claims.token_id, "material": claims.material, "sender": claims.sender,
            "occurrence": claims.occurrence, "customer": customer, "openid": viewer["openid"],
            "via": viewer["via"],
        }
        if customer:
            payload["subject"] = ["customer", customer]  # the timeline recorder reads this
        event = InternalEvent(source=SOURCE, kind=CLICK, at=self.runtime.clock.now(), payload=payload)
        try:
            # One click = one event: a fresh key, never deduplicated.
            await asyncio.wait_for(self.runtime.inbox.put_internal(event, uuid.uuid4().hex),
                                   self.settings.radar.record_wait_s)
        except TimeoutError:
            log.warning("radar click commit is slow; redirecting anyway")
        except Exception as exc:
            log.error("radar click not recorded", extra={"error": str(exc)})


def install_radar(app: web.Application) -> None:
    """Add ``GET /r/{token}`` to the service app (``create_app`` does this by default)."""
    from scrm.app import RUNTIME  # scrm.app imports this module: import at call time

    view = ClickView(app[RUNTIME])
    app.router.add_get(PATH_PREFIX + "{token}", view.handle)
