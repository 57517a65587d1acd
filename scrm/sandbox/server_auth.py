"""Access tokens, OAuth codes (auth/getuserinfo), and the emulated pages of WeCom's OAuth
authorize (members and customers in the WeCom/WeChat browser) and web login (企业微信扫码登录)."""

from __future__ import annotations

import html
import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from aiohttp import web

from scrm.sandbox import errors
from scrm.sandbox.errors import ApiError
from scrm.sandbox.params import Json
from scrm.sandbox.routing import Call, RouteTable, ServerConfig
from scrm.sandbox.server_jssdk import webview_member
from scrm.sandbox.state import SandboxState

router = RouteTable()
_STATE_RE = re.compile(r"^[a-zA-Z0-9]{0,128}$")


@router.get("gettoken", auth=False)
def gettoken(call: Call) -> Json:
    """Issue a token valid ``Limits.token_ttl_s`` (7200 s) on the clock; 40001 on a bad secret."""
    if call.arg("corpid") != call.config.corp_id:
        raise ApiError(errors.INVALID_CORPID)
    if call.arg("corpsecret") != call.config.secret:
        raise ApiError(errors.INVALID_SECRET, "corpsecret mismatch")
    token = call.state.issue_token(call.now)
    return {"access_token": token.token, "expires_in": int(call.state.limits.token_ttl_s)}


@router.get("auth/getuserinfo")
def getuserinfo(call: Call) -> Json:
    """Resolve an OAuth code (5 min, single use): a member → userid; a WeChat viewer → openid,
    plus external_userid when the viewer is a customer followed by an active member."""
    state = call.state
    grant = state.oauth_codes.get(call.arg("code"))
    if grant is None or not grant.valid(call.now):
        raise ApiError(errors.INVALID_CODE, "code unknown, used or expired")
    grant.used = True
    if grant.userid:
        return {"userid": grant.userid}
    reply: Json = {"openid": grant.openid}
    if grant.external_userid and state.follows_of_customer(grant.external_userid):
        reply["external_userid"] = grant.external_userid
    return reply


def issue_oauth_code(state: SandboxState, now: float, viewer: str) -> str:
    """A code for ``viewer``: a member userid, a customer's external_userid, or any openid."""
    if state.active_member(viewer) is not None:
        return state.issue_oauth_code(now, userid=viewer)
    customer = state.customers.get(viewer)
    if customer is not None:
        return state.issue_oauth_code(now, openid=customer.openid, external_userid=customer.external_userid)
    by_openid = next((c for c in state.customers.values() if c.openid == viewer), None)
    if by_openid is not None:
        return state.issue_oauth_code(now, openid=viewer, external_userid=by_openid.external_userid)
    return state.issue_oauth_code(now, openid=viewer or state.new_id("oSbAnon"))


def authorize(request: web.Request, state: SandboxState, config: ServerConfig, now: float) -> web.Response:
    """``GET /connect/oauth2/authorize``: redirect to redirect_uri with ``code`` and ``state``.

    Who is looking is not knowable here, so the sandbox takes the extra query parameter
    ``sandbox_viewer`` (a member userid, an external_userid or an openid; absent = an
    anonymous WeChat user). Errors are plain-text 400 pages, as WeCom shows an error page.
    """
    query = request.query
    if query.get("appid") != config.corp_id:
        return web.Response(status=400, text="invalid appid")
    redirect_uri = query.get("redirect_uri", "")
    parts = urlsplit(redirect_uri)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return web.Response(status=400, text="invalid redirect_uri")
    if config.trusted_domain and not (parts.hostname or "").endswith(config.trusted_domain):
        return web.Response(status=400, text=f"{errors.REDIRECT_DOMAIN_MISMATCH} redirect uri domain mismatch")
    if query.get("response_type", "code") != "code":
        return web.Response(status=400, text="invalid response_type")
    oauth_state = query.get("state", "")
    if not _STATE_RE.match(oauth_state):
        return web.Response(status=400, text="invalid state: a-zA-Z0-9, at most 128 bytes")
    # Inside an emulated chat toolbar (server_jssdk) the webview's member is the one signed in.
    viewer = query.get("sandbox_viewer", "") or webview_member(request, state)
    code = issue_oauth_code(state, now, viewer)
    params = [*parse_qsl(parts.query, keep_blank_values=True), ("code", code), ("state", oauth_state)]
    target = urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(params), ""))
    raise web.HTTPFound(target)


def sso_login(request: web.Request, state: SandboxState, config: ServerConfig, now: float) -> web.Response:
    """``GET /wwlogin/sso/login``: WeCom's web login (a member scans a QR code with the WeCom
    app, then the browser goes to redirect_uri with ``code`` and ``state``).

    Nobody scans here: with ``sandbox_viewer`` (an active member's userid) the page redirects at
    once; without it, it lists the corp's active members and each link signs in as that member.
    Errors are plain-text 400 pages, as WeCom shows an error page.
    """
    query = request.query
    if query.get("login_type") != "CorpApp":
        return web.Response(status=400, text="invalid login_type (CorpApp for a corp's own app)")
    if query.get("appid") != config.corp_id:
        return web.Response(status=400, text="invalid appid")
    if query.get("agentid") != str(config.agent_id):
        return web.Response(status=400, text="invalid agentid")
    redirect_uri = query.get("redirect_uri", "")
    parts = urlsplit(redirect_uri)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return web.Response(status=400, text="invalid redirect_uri")
    oauth_state = query.get("state", "")
    if not _STATE_RE.match(oauth_state):
        return web.Response(status=400, text="invalid state: a-zA-Z0-9, at most 128 bytes")
    viewer = query.get("sandbox_viewer", "")
    if not viewer:
        links = "".join(
            f'<li><a href="{html.escape(_with(request, sandbox_viewer=m.userid))}">{html.escape(m.name)}'
            f"（{html.escape(m.userid)}）</a></li>"
            for m in sorted(state.members.values(), key=lambda m: m.userid) if m.status == "active")
        page = (f"<!doctype html><meta charset=utf-8><title>企业微信登录（沙箱）</title>"
                f"<h1>企业微信登录（沙箱）</h1><p>沙箱里没有二维码：选择以哪位成员的身份扫码。</p><ul>{links}</ul>")
        return web.Response(text=page, content_type="text/html")
    if state.active_member(viewer) is None:
        return web.Response(status=400, text=f"{viewer} is not an active member of this corp")
    code = state.issue_oauth_code(now, userid=viewer)
    params = [*parse_qsl(parts.query, keep_blank_values=True), ("code", code), ("state", oauth_state)]
    raise web.HTTPFound(urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(params), "")))


def _with(request: web.Request, **extra: str) -> str:
    return str(request.rel_url.update_query(extra))
