"""The JS-SDK side of WeCom: the app's jsapi ticket (``ticket/get``), and a webview harness that
plays WeCom's chat toolbar around a page (see ``scrm.sandbox.jssdk`` for the state).

The harness, for a browser (a person trying the demo, or a Playwright test):

1. ``GET /sandbox/webview?member=zhangwei&customer=wm…&target=<page URL>`` (or ``chat=wr…``
   for a customer group's toolbar) opens a webview: who looks at which chat, kept under the
   ``sandbox_webview`` cookie, then redirects to the page. The cookie also answers WeCom's
   OAuth page for this member (no ``sandbox_viewer`` needed), as the real webview is signed in.
2. The page loads ``/sandbox/ww.js`` instead of WeCom's JS-SDK: a ``window.ww`` with
   ``register``, ``getContext``, ``getCurExternalContact``, ``getCurExternalChat`` and
   ``sendChatMessage``. Before the first of them answers it asks the page for its agentConfig
   signature and has the sandbox check it against the live ticket (a wrong one is refused, as
   WeCom refuses it), then answers from the webview.
3. ``sendChatMessage`` is recorded in the state (``state.jssdk.sent``), where tests read it.
   It is checked as WeCom's client would take it: an image, video or file by a ``mediaid``
   this corp uploaded in the last three days, of that kind (the recorded send names the
   uploaded file); a mini program with ``appid``, ``title``, an http(s) ``imgUrl`` and a
   ``page`` ending in ``.html``; a link (``news``) to an http(s) address.

The harness endpoints answer any origin (the page is the service's, on another port) and take
their JSON as text/plain, so a browser sends them without a CORS preflight.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from scrm.sandbox import errors
from scrm.sandbox.errors import ApiError, invalid
from scrm.sandbox.jssdk import TICKET_TTL_S, WEBVIEW_COOKIE, ChatSend, Webview
from scrm.sandbox.params import Json
from scrm.sandbox.records import Media
from scrm.sandbox.routing import Call, RouteTable, ServerConfig
from scrm.sandbox.state import SandboxState

router = RouteTable()
HARNESS_JS = Path(__file__).with_name("ww.js")
MESSAGE_TYPES = ("text", "image", "video", "file", "news", "miniprogram")
MEDIA_TYPES = ("image", "video", "file")  # sent by a media id the corp uploaded
_CORS = {"Access-Control-Allow-Origin": "*"}


@router.get("ticket/get")
def ticket_get(call: Call) -> Json:
    """The app's jsapi ticket for agentConfig (``type=agent_config``): the same one while valid."""
    if call.arg("type") != "agent_config":
        raise invalid("type must be agent_config (the corp's own ticket is get_jsapi_ticket)")
    ticket = call.state.jssdk.agent_ticket(call.now)
    if ticket is None:
        raise ApiError(errors.FREQ_LIMIT, "jsapi_ticket fetched more than 100 times this hour")
    left = int(ticket.issued_at + TICKET_TTL_S - call.now)
    return {"ticket": ticket.value, "expires_in": left}


def webview_member(request: web.Request, state: SandboxState) -> str:
    """The member whose webview this browser plays ('' when none): WeCom's OAuth page knows
    who is signed in to the WeCom app."""
    view = state.jssdk.webviews.get(request.cookies.get(WEBVIEW_COOKIE, ""))
    return view.member if view is not None else ""


def open_webview(request: web.Request, state: SandboxState) -> web.Response:
    """``GET /sandbox/webview``: open a chat toolbar for a member and go to the page."""
    query = request.query
    member, customer, chat, target = (query.get(k, "") for k in ("member", "customer", "chat", "target"))
    parts = urlsplit(target)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return web.Response(status=400, text="target must be the page's http(s) URL")
    if not member or (not customer and not chat):
        return _chooser(request, state, member)
    if state.active_member(member) is None:
        return web.Response(status=400, text=f"member {member!r} is not an active member of this corp")
    if bool(customer) == bool(chat):
        return web.Response(status=400, text="give customer (a 1:1 chat) or chat (a customer group), not both")
    if customer and customer not in state.customers:
        return web.Response(status=400, text=f"customer {customer!r} is not a customer of this corp")
    if chat and chat not in state.groups:
        return web.Response(status=400, text=f"chat {chat!r} is not a customer group of this corp")
    view = state.jssdk.open(member, customer=customer, chat=chat)
    response = web.HTTPFound(target)
    response.set_cookie(WEBVIEW_COOKIE, view.id, path="/", httponly=True, samesite="Lax")
    raise response


def _chooser(request: web.Request, state: SandboxState, member: str) -> web.Response:
    """Nobody opens a chat here: list the members, or a member's customers and groups, each a
    link that opens the toolbar beside that chat."""
    def link(text: str, **extra: str) -> str:
        return f'<li><a href="{html.escape(str(request.rel_url.update_query(extra)))}">{html.escape(text)}</a></li>'

    if state.active_member(member) is None:
        items = [link(f"{m.name}（{m.userid}）", member=m.userid)
                 for m in sorted(state.members.values(), key=lambda m: m.userid) if m.status == "active"]
        title = "选择以哪位成员的身份打开聊天工具栏"
    else:
        items = [link(f"单聊：{state.customers[f.external_userid].name}", member=member, customer=f.external_userid)
                 for f in state.follows_of_member(member) if f.external_userid in state.customers]
        items += [link(f"群聊：{g.name}", member=member, chat=g.chat_id)
                  for g in state.groups.values() if g.owner == member and not g.dismissed]
        title = f"{member} 的聊天：选择在哪个聊天里打开工具栏"
    page = (f"<!doctype html><meta charset=utf-8><title>聊天工具栏（沙箱）</title><h1>聊天工具栏（沙箱）</h1>"
            f"<p>{html.escape(title)}</p><ul>{''.join(items)}</ul>")
    return web.Response(text=page, content_type="text/html")


def harness_script(request: web.Request, state: SandboxState) -> web.Response:
    """``GET /sandbox/ww.js``: the harness, told which webview it plays and where to report."""
    view = state.jssdk.webviews.get(request.cookies.get(WEBVIEW_COOKIE, ""))
    context = None if view is None else {"webview": view.id, "entry": view.entry, "customer": view.customer,
                                         "chat": view.chat}
    origin = f"{request.scheme}://{request.host}"
    head = f"window.__SANDBOX_WEBVIEW__ = {json.dumps(context)};\nwindow.__SANDBOX_BASE__ = {json.dumps(origin)};\n"
    return web.Response(text=head + HARNESS_JS.read_text(encoding="utf-8"), content_type="application/javascript",
                        headers={"Cache-Control": "no-store"})


async def check_agent_config(request: web.Request, state: SandboxState, config: ServerConfig,
                             now: float) -> web.Response:
    """``POST /sandbox/jssdk/agent_config``: the page's agentConfig, checked like WeCom does."""
    try:
        body = await _body(request)
        view = _webview(state, body)
        if str(body.get("corpId")) != config.corp_id:
            raise ApiError(errors.INVALID_CORPID, "corpId is not this corp's")
        if str(body.get("agentId")) != str(config.agent_id):
            raise ApiError(errors.INVALID_AGENTID, "agentId is not this app's")
        ok = state.jssdk.check(view, url=str(body.get("url", "")), noncestr=str(body.get("nonceStr", "")),
                               timestamp=str(body.get("timestamp", "")), signature=str(body.get("signature", "")),
                               now=now)
        if not ok:
            raise invalid("invalid signature (agentConfig: not signed with the live jsapi ticket for this url)")
    except ApiError as exc:
        return web.json_response(exc.reply(), headers=_CORS)
    return web.json_response({"errcode": 0, "errmsg": "ok"}, headers=_CORS)


async def record_send(request: web.Request, state: SandboxState, now: float) -> web.Response:
    """``POST /sandbox/jssdk/send``: ``sendChatMessage`` from a configured webview, recorded."""
    try:
        body = await _body(request)
        view = _webview(state, body)
        if not view.configured:
            raise ApiError(errors.NO_PRIVILEGE, "sendChatMessage before a valid agentConfig")
        message = body.get("message")
        if not isinstance(message, dict) or message.get("msgtype") not in MESSAGE_TYPES:
            raise invalid(f"message.msgtype must be one of {', '.join(MESSAGE_TYPES)}")
        media = _check_message(message, state, now)
        state.jssdk.sent.append(ChatSend(view.id, view.member, view.customer, view.chat, message, now,
                                         media_file=media.filename if media is not None else ""))
    except ApiError as exc:
        return web.json_response(exc.reply(), headers=_CORS)
    return web.json_response({"errcode": 0, "errmsg": "ok"}, headers=_CORS)


def _http(value: object) -> bool:
    return urlsplit(str(value or "")).scheme in ("http", "https")


def _check_message(message: dict[str, Any], state: SandboxState, now: float) -> Media | None:
    """Refuse what WeCom's client would refuse; the uploaded media an image/video/file names."""
    kind = message["msgtype"]
    part = message.get(kind)
    if not isinstance(part, dict):
        raise invalid(f"message.{kind} must be an object")
    if kind == "text" and not str(part.get("content", "")).strip():
        raise invalid("message.text.content is empty")
    if kind == "news" and not _http(part.get("link")):
        raise invalid("message.news.link must be an http(s) URL")
    if kind in MEDIA_TYPES:
        media = state.require_media(str(part.get("mediaid") or ""), now, f"message.{kind}.mediaid")
        if media.type != kind:
            raise invalid(f"message.{kind}.mediaid names an upload of type {media.type}, not {kind}")
        return media
    if kind == "miniprogram":
        missing = [k for k in ("appid", "title", "imgUrl", "page") if not str(part.get(k) or "").strip()]
        if missing:
            raise invalid(f"message.miniprogram needs {', '.join(missing)}")
        if not _http(part["imgUrl"]):
            raise invalid("message.miniprogram.imgUrl must be an http(s) URL")
        if not str(part["page"]).split("?")[0].endswith(".html"):
            raise invalid("message.miniprogram.page must end with .html")
    return None


async def _body(request: web.Request) -> Json:
    try:
        body = json.loads(await request.text())
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ApiError(errors.DATA_FORMAT_ERROR, "body is not valid JSON") from None
    if not isinstance(body, dict):
        raise ApiError(errors.DATA_FORMAT_ERROR, "body must be a JSON object")
    return body


def _webview(state: SandboxState, body: Json) -> Webview:
    view = state.jssdk.webviews.get(str(body.get("webview", "")))
    if view is None:
        raise invalid("unknown webview (open the page through /sandbox/webview)")
    return view
