"""Who is looking: the toolbar page signs a member in through WeCom OAuth (``snsapi_base``: the
userid, silently inside the WeCom app), and signs the page's URL for ``ww.register``.

The OAuth ``state`` is a random value only this browser's session holds, so nobody can make a
manager's toolbar sign in as someone else (login CSRF). ``auth/getuserinfo`` must name a member
(``userid``); a WeChat user (``openid``) is refused. A new session starts after sign-in (a token
planted before it is worthless).
"""

from __future__ import annotations

import secrets
import string
from urllib.parse import urlencode, urlsplit

from aiohttp import web
from aiohttp_session import get_session, new_session
from sqlalchemy import select

from handlers.console.api import csrf_token
from handlers.contacts.api import Member
from handlers.sidebar.settings import jssdk_url, oauth_url
from handlers.sidebar.web import PAGE, STORAGE, TICKETS, VIEWER, refuse, render, runtime_of
from scrm.adapters.wecom.errors import WeComClientError

_ALNUM = string.ascii_letters + string.digits  # WeCom's state: a-zA-Z0-9, at most 128 bytes
MAX_URL = 2048


def _base(request: web.Request) -> str:
    return runtime_of(request).settings.server.public_url.rstrip("/")


async def page(request: web.Request) -> web.StreamResponse:
    """The toolbar page: the shell whose script asks WeCom which chat it is in, then the panels."""
    viewer = request.get(VIEWER)
    runtime = runtime_of(request)
    if viewer is None:
        session = await get_session(request)
        state = session["oauth_state"] = "".join(secrets.choice(_ALNUM) for _ in range(32))
        w = runtime.settings.wecom
        params = {"appid": w.corp_id, "redirect_uri": _base(request) + "/sidebar/oauth", "response_type": "code",
                  "scope": "snsapi_base", "state": state, "agentid": str(w.agent_id)}
        raise web.HTTPFound(f"{oauth_url(runtime.settings)}?{urlencode(params)}#wechat_redirect")
    w = runtime.settings.wecom
    return render(request, "page.html", {"jssdk_url": jssdk_url(runtime.settings), "corp_id": w.corp_id,
                                         "agent_id": w.agent_id})


async def oauth_return(request: web.Request) -> web.StreamResponse:
    runtime = runtime_of(request)
    session = await get_session(request)
    expected = session.pop("oauth_state", None)
    if not expected or request.query.get("state") != expected:
        return refuse(request, 400, "登录已过期或不是从工具栏发起，请重新打开工具栏")
    code = request.query.get("code", "")
    if not code:
        return refuse(request, 400, "企业微信没有返回登录码，请重新打开工具栏")
    try:
        who = await runtime.wecom.get_user_info(code)
    except WeComClientError as exc:
        return refuse(request, 400, f"企业微信拒绝了登录码：{exc}")
    if not who.userid:
        return refuse(request, 403, "只有本行员工可以使用聊天工具栏")
    async with runtime.sessions() as db:
        name = await db.scalar(select(Member.name).where(Member.userid == who.userid)) or who.userid
    storage = request.config_dict[STORAGE]
    if session.identity:
        await storage.forget(str(session.identity))
    fresh = await new_session(request)  # a new token (its save drops expired sessions)
    fresh.update({"actor": who.userid, "name": name})
    csrf_token(fresh)
    raise web.HTTPSeeOther(PAGE)


async def sign_url(request: web.Request) -> web.Response:
    """``getAgentConfigSignature(url)``: only for the sidebar's own pages (no signing oracle for
    other URLs of the bank's trusted domain)."""
    url = request.query.get("url", "")
    parts = urlsplit(url)
    own = urlsplit(_base(request) + PAGE)
    if (len(url) > MAX_URL or "#" in url or (parts.scheme, parts.netloc) != (own.scheme, own.netloc)
            or not parts.path.startswith(own.path)):
        return refuse(request, 400, f"url must be a page under {_base(request)}{PAGE}, without #fragment")
    try:
        signed = await request.config_dict[TICKETS].sign(url)
    except WeComClientError as exc:
        return refuse(request, 503, f"jsapi ticket unavailable: {exc}")
    return web.json_response(signed.as_json(), headers={"Cache-Control": "no-store"})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/", page)
    app.router.add_get("/oauth", oauth_return)
    app.router.add_get("/signature", sign_url)
