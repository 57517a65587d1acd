"""Signing in and out: WeCom's web login for members (QR code scanned with the WeCom app, then
``auth/getuserinfo``), and the break-glass local admin (argon2 hash in the configuration, five
wrong passwords lock it for 15 minutes). Every attempt, good or bad, is in the audit log."""

from __future__ import annotations

import secrets
import string
from urllib.parse import urlencode

from aiohttp import web
from aiohttp_session import Session, get_session, new_session
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select

from handlers.console import audit
from handlers.console.access import LOCAL_ADMIN, Role
from handlers.console.settings import WECOM_LOGIN_URL, console_settings, login_url
from handlers.console.web import ACCESS, STORAGE, csrf_token, render, runtime_of
from handlers.contacts.api import Member
from scrm.adapters.wecom.errors import WeComClientError

_ALNUM = string.ascii_letters + string.digits  # WeCom's state: a-zA-Z0-9, at most 128 bytes
_HASHER = PasswordHasher()


def _state() -> str:
    return "".join(secrets.choice(_ALNUM) for _ in range(32))


async def login_page(request: web.Request) -> web.Response:
    session = await get_session(request)
    settings = console_settings(runtime_of(request).settings)
    return render(request, "login.html", {"csrf": csrf_token(session), "local_admin": bool(
        settings.admin_password_hash.get_secret_value()), "error": request.query.get("error", "")})


async def wecom_login(request: web.Request) -> web.Response:
    """To WeCom's login page, with a state only this browser's session knows (no login CSRF)."""
    runtime = runtime_of(request)
    session = await get_session(request)
    state = session["oauth_state"] = _state()
    target = login_url(runtime.settings)
    params = {"login_type": "CorpApp", "appid": runtime.settings.wecom.corp_id,
              "agentid": str(runtime.settings.wecom.agent_id),
              "redirect_uri": runtime.settings.server.public_url.rstrip("/") + "/console/login/callback",
              "state": state}
    viewer = request.query.get("viewer", "")
    if viewer and target != WECOM_LOGIN_URL:
        params["sandbox_viewer"] = viewer  # the sandbox's stand-in for "who scanned the QR code"
    raise web.HTTPFound(f"{target}?{urlencode(params)}")


async def wecom_callback(request: web.Request) -> web.Response:
    runtime = runtime_of(request)
    session = await get_session(request)
    expected = session.pop("oauth_state", None)
    if not expected or request.query.get("state") != expected:
        return _refused(request, "登录已过期或不是从本页面发起，请重新登录", status=400)
    code = request.query.get("code", "")
    if not code:
        return _refused(request, "企业微信没有返回登录码，请重新登录", status=400)
    try:
        who = await runtime.wecom.get_user_info(code)
    except WeComClientError as exc:
        return _refused(request, f"企业微信拒绝了登录码：{exc}", status=400)
    if not who.userid:
        return _refused(request, "只有本行员工可以登录控制台", status=403)
    grant = request.config_dict[ACCESS].current().grant_of(who.userid)
    now = runtime.clock.now()
    async with runtime.sessions() as db, db.begin():
        name = await db.scalar(select(Member.name).where(Member.userid == who.userid)) or who.userid
        if grant is None:
            audit.record(db, now, who.userid, "", "signin_refused", "wecom", audit.remote_of(request),
                         reason="not in the console access file")
        else:
            audit.record(db, now, who.userid, grant.role.value, "signin", "wecom", audit.remote_of(request))
    if grant is None:
        return _refused(request, f"{name}（{who.userid}）没有控制台权限，请联系运营管理员", status=403)
    await _start(request, session, who.userid, name, grant.role)
    raise web.HTTPSeeOther("/console/")


async def local_login(request: web.Request) -> web.Response:
    runtime = runtime_of(request)
    settings = console_settings(runtime.settings)
    hashed = settings.admin_password_hash.get_secret_value()
    form = await request.post()
    user, password = str(form.get("user", "")), str(form.get("password", ""))
    now = runtime.clock.now()
    async with runtime.sessions() as db, db.begin():
        failures = await audit.recent_failures(db, LOCAL_ADMIN, now - audit.LOCKOUT_WINDOW)
        locked = failures >= audit.LOCKOUT_FAILURES
        ok = bool(hashed) and not locked and user == "admin" and _verify(hashed, password)
        reason = "locked" if locked else "" if ok else "wrong user or password"
        audit.record(db, now, LOCAL_ADMIN, Role.OPS_ADMIN.value if ok else "", "signin" if ok else "signin_refused",
                     "local", audit.remote_of(request), **({"reason": reason} if reason else {}))
    if not ok:
        message = "尝试次数过多，请15分钟后再试" if locked else "用户名或密码错误"
        return render(request, "login.html", {"csrf": csrf_token(await get_session(request)), "local_admin": True,
                                              "error": message}, status=401)
    await _start(request, await get_session(request), LOCAL_ADMIN, "本地管理员", Role.OPS_ADMIN)
    raise web.HTTPSeeOther("/console/")


def _verify(hashed: str, password: str) -> bool:
    try:
        return _HASHER.verify(hashed, password)
    except (VerificationError, InvalidHashError):
        return False


async def _start(request: web.Request, old: Session, actor: str, name: str, role: Role) -> None:
    """A fresh session (new token: a token planted before sign-in is worthless after it)."""
    storage = request.config_dict[STORAGE]
    if old.identity:
        await storage.forget(str(old.identity))
    session = await new_session(request)
    session.update({"actor": actor, "name": name, "role": role.value})
    csrf_token(session)


async def logout(request: web.Request) -> web.Response:
    runtime = runtime_of(request)
    session = await get_session(request)
    actor = session.get("actor")
    if isinstance(actor, str) and actor:
        async with runtime.sessions() as db, db.begin():
            audit.record(db, runtime.clock.now(), actor, str(session.get("role", "")), "signout",
                         remote=audit.remote_of(request))
    session.invalidate()
    raise web.HTTPSeeOther("/console/login")


def _refused(request: web.Request, message: str, *, status: int) -> web.Response:
    return render(request, "error.html", {"title": "无法登录", "message": message, "retry": "/console/login"},
                  status=status)


def hash_password(password: str) -> str:
    """The argon2 hash for ``[console] admin_password_hash``."""
    return _HASHER.hash(password)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/login", login_page)
    app.router.add_get("/login/wecom", wecom_login)
    app.router.add_get("/login/callback", wecom_callback)
    app.router.add_post("/login/local", local_login)
    app.router.add_post("/logout", logout)
