"""Console sessions, kept in the database (aiohttp-session with our own storage).

The cookie holds a random token and nothing else; the row holds the data under the token's
SHA-256. So signing out, or an ops admin removing someone from the access file, ends a session
at once on every instance, a stolen database opens no session, and expiry is decided by the
service's clock (idle and absolute limits), never by the browser. The cookie itself is a
browser-session cookie: HttpOnly, SameSite=Lax, and Secure whenever the console is on HTTPS.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from aiohttp import web
from aiohttp_session import AbstractStorage, Session
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession as DbSession
from sqlalchemy.ext.asyncio import async_sessionmaker

from handlers.console.models import ConsoleSession
from scrm.adapters.db.engine import dialect_of, table_of, upsert
from scrm.kernel.clock import Clock

COOKIE = "scrm_console"
_CREATED = "_created"  # when the session signed in (ISO), for the absolute limit
_TOUCHED = "_touched"  # when a request last moved the idle limit on (ISO)
# A request moves the idle limit on at most this often: a write per page view (every sidebar
# panel, every htmx click) would put the session table on the path of every request.
TOUCH_EVERY = timedelta(seconds=60)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class DatabaseStorage(AbstractStorage):
    def __init__(self, sessions: async_sessionmaker[DbSession], clock: Clock, *, idle_s: int, max_s: int,
                 secure: bool, cookie_name: str = COOKIE, path: str = "/console") -> None:
        # cookie_name/path: another web app of the service (the sidebar, /sidebar) keeps its own
        # sessions in the same table under its own cookie (handlers.console.api).
        super().__init__(cookie_name=cookie_name, httponly=True, secure=secure, samesite="Lax", path=path)
        self._sessions = sessions
        self._clock = clock
        self._idle = timedelta(seconds=idle_s)
        self._max = timedelta(seconds=max_s)

    async def load_session(self, request: web.Request) -> Session:
        return await self.load_with(None, request)

    async def load_with(self, db: DbSession | None, request: web.Request) -> Session:
        """``load_session`` on ``db`` when given: the sidebar reads the session row on the
        connection its panel then reads from (one pool checkout a request, not two)."""
        token = self.load_cookie(request)
        if not token or len(token) > 128:
            return Session(None, data=None, new=True)
        now = self._clock.now()
        if db is not None:
            row = await db.get(ConsoleSession, _hash(token))
        else:
            async with self._sessions() as own:
                row = await own.get(ConsoleSession, _hash(token))
        if row is None or row.expires_at <= now or now - row.created_at >= self._max:
            return Session(None, data=None, new=True)
        return Session(token, data={"session": dict(row.data)}, new=False)

    def keep_alive(self, session: Session) -> None:
        """A signed-in request: move the session's idle limit on (saved by ``save_session``), at
        most once per ``TOUCH_EVERY``."""
        now = self._clock.now()
        touched = session.get(_TOUCHED)
        if not isinstance(touched, str) or now - datetime.fromisoformat(touched) >= TOUCH_EVERY:
            session[_TOUCHED] = now.isoformat()  # marks the session changed

    async def save_session(self, request: web.Request, response: web.StreamResponse, session: Session) -> None:
        """Store the session (a signed-in request marks it changed through ``keep_alive``, which
        moves the idle limit on, never past the absolute one) or, emptied, end it."""
        token = session.identity
        if session.empty:
            if token:
                await self.forget(str(token))
            self.save_cookie(response, "", max_age=0)  # expire the cookie
            return
        now = self._clock.now()
        if not token:
            token = secrets.token_urlsafe(32)
            session.set_new_identity(token)
            # Every new session drops the expired ones (an index range delete): a crawler opening
            # the sign-in page over and over cannot grow the table past what is still valid.
            await self.purge()
        if _CREATED not in session:
            session[_CREATED] = session[_TOUCHED] = now.isoformat()
        created = datetime.fromisoformat(str(session[_CREATED]))
        row = {"token_hash": _hash(str(token)), "data": dict(session), "created_at": created,
               "expires_at": min(now + self._idle, created + self._max)}
        async with self._sessions() as db, db.begin():
            await db.execute(upsert(dialect_of(db), table_of(ConsoleSession), ["token_hash"], ["data", "expires_at"]),
                             row)
        self.save_cookie(response, str(token))

    async def forget(self, token: str) -> None:
        async with self._sessions() as db, db.begin():
            await db.execute(delete(ConsoleSession).where(ConsoleSession.token_hash == _hash(token)))

    async def purge(self) -> int:
        """Drop expired sessions (whenever a session starts: the table stays the size of who may
        still use one)."""
        async with self._sessions() as db, db.begin():
            res = await db.execute(delete(ConsoleSession).where(ConsoleSession.expires_at <= self._clock.now()))
        return int(getattr(res, "rowcount", 0) or 0)
