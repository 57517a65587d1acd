"""The figures for the bank's BI: ``GET /api/v1/reports/NAME?since=&until=&days=&by=&dept=&format=json|csv``
with ``Authorization: Bearer <token>`` — the reports of ``scrm report NAME``
(:mod:`handlers.console.reports`), the same bytes for the same rows.

Tokens are ``[console] bi_tokens`` entries (``scrm console bi-token NAME [--scope PATH]``): a
name, the token's SHA-256 and an optional department path, which becomes the caller's grant
(the whole bank without one, read only). A missing or wrong token is 401, a ``dept`` outside
the token's scope 403, bad input 400, an unknown report 404 — each one line. Every call made with
a valid token, refused or answered, is a row of the console's audit log (actor ``bi:<name>``).
A call without a valid token is a warning in the log (path and remote address), not an audit
row: anyone can send those, and a database write per anonymous request would let them fill the
audit log and load the database. The token itself is never stored, logged, audited or echoed.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from typing import TYPE_CHECKING, Any

from aiohttp import web

from handlers.console import audit
from handlers.console.access import Grant, Role
from handlers.console.jobs import zone_of
from handlers.console.report import as_csv, as_json
from handlers.console.reports import REPORTS, BadAsk, ask, run, today_in
from handlers.console.scope import BadScope, ScopeRefused
from handlers.console.settings import BiToken, console_settings

if TYPE_CHECKING:
    from scrm.kernel.service import Runtime

log = logging.getLogger("scrm.console.bi")
ROUTE = "/api/v1/reports/{name}"
ROLE = "bi"  # the audit log's role column for BI calls
TOKEN_PREFIX = "scrmbi_"  # lets a secret scanner recognise a leaked token
MAX_TOKEN = 256
FORMATS = {"json": "application/json", "csv": "text/csv"}


def new_token() -> str:
    """A fresh token: 32 random bytes (256 bits), URL-safe."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def holder_of(tokens: list[BiToken], authorization: str) -> BiToken | None:
    """The configured token an ``Authorization: Bearer …`` header presents, or None. Every
    configured hash is compared, in constant time, so the answer's timing tells nothing."""
    scheme, _, presented = authorization.partition(" ")
    presented = presented.strip()
    if scheme.lower() != "bearer" or not presented or len(presented) > MAX_TOKEN:
        return None
    digest = token_hash(presented)
    found = None
    for token in tokens:
        if hmac.compare_digest(digest, token.sha256):
            found = token
    return found


def grant_of(token: BiToken) -> Grant:
    actor = f"bi:{token.name}"
    return Grant(actor, Role.BRANCH_HEAD, token.scope) if token.scope else Grant(actor, Role.AUDITOR)


def _line(status: int, text: str) -> web.Response:
    return web.Response(status=status, text=text.splitlines()[0] + "\n" if text else "\n",
                        headers={"Cache-Control": "no-store"})


def install(app: web.Application, runtime: Runtime) -> None:
    """Add the BI route to the service's main app (not the console's: no session, no CSRF)."""

    async def noted(request: web.Request, actor: str, action: str, **detail: Any) -> None:
        async with runtime.sessions() as db, db.begin():
            audit.record(db, runtime.clock.now(), actor, ROLE, action, request.path_qs, audit.remote_of(request),
                         **detail)

    async def reports(request: web.Request) -> web.Response:
        token = holder_of(console_settings(runtime.settings).bi_tokens, request.headers.get("Authorization", ""))
        if token is None:
            log.warning("BI request refused: missing or wrong token",
                        extra={"path": request.path, "remote": audit.remote_of(request)})
            return web.Response(status=401, text="missing or wrong BI token (Authorization: Bearer <token>)\n",
                                headers={"WWW-Authenticate": 'Bearer realm="scrm"', "Cache-Control": "no-store"})
        grant, name, q = grant_of(token), request.match_info["name"], request.query
        fmt = q.get("format", "json")
        if name not in REPORTS:
            await noted(request, grant.userid, "bi_report", status=404)
            return _line(404, f"no report {name!r} (one of {', '.join(REPORTS)})")
        if fmt not in FORMATS:
            await noted(request, grant.userid, "bi_report", status=400)
            return _line(400, f"format must be json or csv, not {fmt!r}")
        now = runtime.clock.now()
        zone = zone_of(runtime.playbook.current, runtime.settings)
        async with runtime.sessions() as db:
            try:
                wanted = ask(name, today=today_in(zone, now), since=q.get("since") or None,
                             until=q.get("until") or None, days=q.get("days") or None, by=q.get("by") or None)
                data = await run(db, grant, wanted, zone=zone, now=now, dept=q.get("dept", ""),
                                 playbook=runtime.playbook.current)
            except (BadAsk, BadScope) as exc:
                status, action, answer = 400, "bi_report", str(exc)
            except ScopeRefused:
                status, action, answer = 403, "forbidden", "outside this token's scope"
            else:
                status, action, answer = 200, "bi_report", ""
            audit.record(db, runtime.clock.now(), grant.userid, ROLE, action, request.path_qs,
                         audit.remote_of(request), status=status, format=fmt)
            await db.commit()
        if status != 200:
            return _line(status, answer)
        body = as_csv(data) if fmt == "csv" else as_json(data) + "\n"
        return web.Response(text=body, content_type=FORMATS[fmt], charset="utf-8",
                            headers={"Cache-Control": "no-store"})

    app.router.add_get(ROUTE, reports)
