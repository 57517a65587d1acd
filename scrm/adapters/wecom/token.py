"""The access token: cached in the database, shared by every instance, refreshed single-flight.

WeCom asks callers to cache the token ("不能频繁调用gettoken接口，否则会受到频率拦截") and may
revoke it early, so a token is refreshed (PROTOCOL.md §4 gettoken):

* proactively, ``refresh_margin_s`` before it expires;
* on 40014/42001/41001, after which the client retries its call once.

Single flight works at two levels: an :class:`asyncio.Lock` serialises refreshes inside one
process, and a lease (``access_token.refreshing_until``) taken with one conditional UPDATE lets
only one instance call gettoken; the others poll the row until the new token appears or the
lease runs out (a crashed holder), then take the lease themselves.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol, cast

from sqlalchemy import CursorResult, or_, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from scrm.adapters.db.engine import insert_ignore, upsert
from scrm.adapters.wecom.errors import TokenUnavailableError
from scrm.adapters.wecom.tables import AccessToken
from scrm.kernel.clock import Clock

log = logging.getLogger("scrm.adapters.wecom.api")

_TABLE = AccessToken.metadata.tables[AccessToken.__tablename__]


class TokenStore(Protocol):
    """Where tokens live between calls and instances."""

    async def get(self, app: str) -> tuple[str, datetime] | None:
        """The stored ``(token, expires_at)``, or None when there is none yet."""
        ...

    async def save(self, app: str, token: str, expires_at: datetime) -> None:
        """Store a fresh token and release the refresh lease."""
        ...

    async def try_begin_refresh(self, app: str, lease_s: float) -> bool:
        """Take the refresh lease for ``lease_s`` seconds unless a live lease exists."""
        ...

    async def end_refresh(self, app: str) -> None:
        """Release the lease without a new token (the refresh failed)."""
        ...


class MemoryTokenStore:
    """A process-local :class:`TokenStore` (tests, one-off scripts)."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._tokens: dict[str, tuple[str, datetime]] = {}
        self._leases: dict[str, datetime] = {}

    async def get(self, app: str) -> tuple[str, datetime] | None:
        return self._tokens.get(app)

    async def save(self, app: str, token: str, expires_at: datetime) -> None:
        self._tokens[app] = (token, expires_at)
        self._leases.pop(app, None)

    async def try_begin_refresh(self, app: str, lease_s: float) -> bool:
        now = self._clock.now()
        until = self._leases.get(app)
        if until is not None and until > now:
            return False
        self._leases[app] = now + timedelta(seconds=lease_s)
        return True

    async def end_refresh(self, app: str) -> None:
        self._leases.pop(app, None)


@contextmanager
def _sanitised(action: str) -> Iterator[None]:
    """Database errors without their text: SQLAlchemy puts bound parameters (the token) in it."""
    try:
        yield
    except SQLAlchemyError as exc:
        raise TokenUnavailableError(f"token store {action} failed: {type(exc).__name__}", api="gettoken") from None


class DbTokenStore:
    """The ``access_token`` table; works on SQLite and PostgreSQL alike."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], clock: Clock) -> None:
        self._sm = sessionmaker
        self._clock = clock

    async def get(self, app: str) -> tuple[str, datetime] | None:
        with _sanitised("read"):
            async with self._sm() as s:
                row = (await s.execute(
                    select(AccessToken.token, AccessToken.expires_at).where(AccessToken.app == app))).first()
        if row is None or not row.token or row.expires_at is None:
            return None
        return row.token, row.expires_at

    async def save(self, app: str, token: str, expires_at: datetime) -> None:
        with _sanitised("save"):
            async with self._sm.begin() as s:
                stmt = upsert(s.get_bind().dialect.name, _TABLE, conflict=["app"],
                              update=["token", "expires_at", "refreshing_until"])
                await s.execute(stmt, {"app": app, "token": token, "expires_at": expires_at, "refreshing_until": None})

    async def try_begin_refresh(self, app: str, lease_s: float) -> bool:
        now = self._clock.now()
        with _sanitised("lease"):
            async with self._sm.begin() as s:
                await s.execute(insert_ignore(s.get_bind().dialect.name, _TABLE, conflict=["app"]),
                                {"app": app, "token": ""})
                # One conditional UPDATE is the lease: under concurrency exactly one writer matches
                # (PostgreSQL re-checks the WHERE after the row lock; SQLite serialises writers).
                res = await s.execute(
                    update(AccessToken)
                    .where(AccessToken.app == app,
                           or_(AccessToken.refreshing_until.is_(None), AccessToken.refreshing_until <= now))
                    .values(refreshing_until=now + timedelta(seconds=lease_s))
                    .execution_options(synchronize_session=False))
                return cast("CursorResult[Any]", res).rowcount == 1

    async def end_refresh(self, app: str) -> None:
        with _sanitised("release"):
            async with self._sm.begin() as s:
                await s.execute(update(AccessToken).where(AccessToken.app == app)
                                .values(refreshing_until=None).execution_options(synchronize_session=False))


@dataclass(frozen=True)
class FetchedToken:
    """What gettoken returned."""

    token: str
    expires_in: int


TokenFetcher = Callable[[], Awaitable[FetchedToken]]


class TokenManager:
    """Hands out a valid access token, refreshing it single-flight.

    ``fetch`` calls gettoken (the client passes its own method). The last token is kept in memory
    too, so a call does not read the database unless the token is near expiry or rejected.
    """

    def __init__(self, store: TokenStore, fetch: TokenFetcher, clock: Clock, *, app: str,
                 refresh_margin_s: float = 300.0, lease_s: float = 30.0, poll_s: float = 0.2) -> None:
        self._store = store
        self._fetch = fetch
        self._clock = clock
        self.app = app
        self._margin = timedelta(seconds=refresh_margin_s)
        self._lease_s = lease_s
        self._poll_s = poll_s
        self._lock = asyncio.Lock()
        self._cached: tuple[str, datetime] | None = None

    def _fresh(self, entry: tuple[str, datetime] | None, stale: str | None) -> bool:
        return entry is not None and entry[0] != stale and entry[1] - self._margin > self._clock.now()

    async def get(self) -> str:
        """A token valid for at least ``refresh_margin_s`` more (refreshing if needed)."""
        if self._fresh(self._cached, None):
            assert self._cached is not None
            return self._cached[0]
        return await self.refresh()

    async def invalidate(self, rejected: str) -> str:
        """WeCom rejected ``rejected`` (40014/42001/41001): return a different, fresh token."""
        if self._cached is not None and self._cached[0] == rejected:
            self._cached = None
        return await self.refresh(stale=rejected)

    async def refresh(self, stale: str | None = None) -> str:
        """Get a fresh token that is not ``stale``: from memory, the store, or gettoken."""
        async with self._lock:
            # Another task of this process may have refreshed while we queued for the lock.
            if self._fresh(self._cached, stale):
                assert self._cached is not None
                return self._cached[0]
            while True:
                stored = await self._store.get(self.app)
                if self._fresh(stored, stale):
                    assert stored is not None
                    self._cached = stored
                    return stored[0]
                if await self._store.try_begin_refresh(self.app, self._lease_s):
                    # The previous holder may have saved (and released) between our read and
                    # our lease: look again before calling gettoken a second time.
                    stored = await self._store.get(self.app)
                    if self._fresh(stored, stale):
                        assert stored is not None
                        await self._store.end_refresh(self.app)
                        self._cached = stored
                        return stored[0]
                    return await self._refresh_holding_lease()
                # Another instance is refreshing. A token that is merely near expiry still works:
                # use it rather than wait; otherwise poll until the holder saves or its lease lapses.
                if stored is not None and stored[0] != stale and stored[1] > self._clock.now():
                    return stored[0]
                await self._clock.sleep(self._poll_s)

    async def _refresh_holding_lease(self) -> str:
        try:
            fetched = await self._fetch()
        except BaseException:
            # Let the next caller (here or elsewhere) try at once instead of waiting out the lease.
            await asyncio.shield(self._store.end_refresh(self.app))
            raise
        expires_at = self._clock.now() + timedelta(seconds=fetched.expires_in)
        await self._store.save(self.app, fetched.token, expires_at)
        self._cached = (fetched.token, expires_at)
        log.info("access token refreshed", extra={"api": "gettoken", "app": self.app,
                                                   "expires_in": fetched.expires_in})
        return fetched.token
