"""Access-token stores (memory, SQLite, PostgreSQL) and single-flight refresh."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from scrm.adapters.db.engine import make_engine, make_sessionmaker
from scrm.adapters.wecom.errors import TokenUnavailableError
from scrm.adapters.wecom.token import DbTokenStore, FetchedToken, MemoryTokenStore, TokenManager, TokenStore
from scrm.kernel.clock import FakeClock, SystemClock

APP = "wwcorp:1000002"


@pytest.fixture
async def sessions(db_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """A migrated, empty database (SQLite always, PostgreSQL when reachable — see conftest)."""
    engine = make_engine(db_url)
    try:
        yield make_sessionmaker(engine)
    finally:
        await engine.dispose()


@pytest.fixture(params=["memory", "db"])
async def store_and_clock(request: pytest.FixtureRequest,
                          sqlite_url: str) -> AsyncIterator[tuple[TokenStore, FakeClock]]:
    clock = FakeClock()
    if request.param == "memory":
        yield MemoryTokenStore(clock), clock
        return
    engine = make_engine(sqlite_url)
    try:
        yield DbTokenStore(make_sessionmaker(engine), clock), clock
    finally:
        await engine.dispose()


async def check_store_contract(store: TokenStore, clock: FakeClock) -> None:
    assert await store.get(APP) is None
    # The lease: one holder at a time, until it lapses.
    assert await store.try_begin_refresh(APP, 30)
    assert not await store.try_begin_refresh(APP, 30)
    assert await store.get(APP) is None  # a lease row alone is not a token
    clock.advance(31)
    assert await store.try_begin_refresh(APP, 30)
    # Saving a token releases the lease.
    expires = clock.now() + timedelta(seconds=7200)
    await store.save(APP, "tok-1", expires)
    assert await store.get(APP) == ("tok-1", expires)
    assert await store.try_begin_refresh(APP, 30)
    await store.end_refresh(APP)
    assert await store.try_begin_refresh(APP, 30)
    # Apps are independent.
    assert await store.get("other:1") is None
    assert await store.try_begin_refresh("other:1", 30)


async def test_memory_store_contract() -> None:
    clock = FakeClock()
    await check_store_contract(MemoryTokenStore(clock), clock)


async def test_db_store_contract(sessions: async_sessionmaker[AsyncSession]) -> None:
    clock = FakeClock()
    await check_store_contract(DbTokenStore(sessions, clock), clock)


async def test_db_lease_is_exclusive_under_concurrency(sessions: async_sessionmaker[AsyncSession]) -> None:
    """Many instances race for the lease on a missing row: exactly one wins."""
    clock = FakeClock()
    stores = [DbTokenStore(sessions, clock) for _ in range(8)]
    wins = await asyncio.gather(*(s.try_begin_refresh(APP, 30) for s in stores))
    assert sum(wins) == 1


class Fetcher:
    """A gettoken stand-in that counts calls and can be held open."""

    def __init__(self, expires_in: int = 7200) -> None:
        self.calls = 0
        self.expires_in = expires_in
        self.release = asyncio.Event()
        self.release.set()
        self.started = asyncio.Event()
        self.fail: Exception | None = None

    async def __call__(self) -> FetchedToken:
        self.calls += 1
        self.started.set()
        await self.release.wait()
        if self.fail is not None:
            raise self.fail
        return FetchedToken(f"tok-{self.calls}", self.expires_in)


async def test_manager_caches_and_refreshes_before_expiry(store_and_clock: tuple[TokenStore, FakeClock]) -> None:
    store, clock = store_and_clock
    fetch = Fetcher()
    mgr = TokenManager(store, fetch, clock, app=APP, refresh_margin_s=300)
    assert await mgr.get() == "tok-1"
    assert await mgr.get() == "tok-1"
    clock.advance(7200 - 301)
    assert await mgr.get() == "tok-1"
    clock.advance(2)  # now inside the refresh margin
    assert await mgr.get() == "tok-2"
    assert fetch.calls == 2


async def test_in_process_single_flight(store_and_clock: tuple[TokenStore, FakeClock]) -> None:
    store, clock = store_and_clock
    fetch = Fetcher()
    fetch.release.clear()
    mgr = TokenManager(store, fetch, clock, app=APP)
    tasks = [asyncio.create_task(mgr.get()) for _ in range(20)]
    await fetch.started.wait()
    fetch.release.set()
    assert set(await asyncio.gather(*tasks)) == {"tok-1"}
    assert fetch.calls == 1


async def test_invalidate_refreshes_once_for_many_rejections(store_and_clock: tuple[TokenStore, FakeClock]) -> None:
    store, clock = store_and_clock
    fetch = Fetcher()
    mgr = TokenManager(store, fetch, clock, app=APP)
    first = await mgr.get()
    # Ten calls saw 42001 for the same token at once: one gettoken, all get the new token.
    results = await asyncio.gather(*(mgr.invalidate(first) for _ in range(10)))
    assert set(results) == {"tok-2"}
    assert fetch.calls == 2


async def test_fetch_failure_releases_lease(store_and_clock: tuple[TokenStore, FakeClock]) -> None:
    store, clock = store_and_clock
    fetch = Fetcher()
    fetch.fail = RuntimeError("gettoken down")
    mgr = TokenManager(store, fetch, clock, app=APP)
    with pytest.raises(RuntimeError):
        await mgr.get()
    # The next attempt does not wait out the lease.
    fetch.fail = None
    t0 = clock.monotonic()
    assert await mgr.get() == "tok-2"
    assert clock.monotonic() == t0


async def test_crashed_holder_lease_lapses(store_and_clock: tuple[TokenStore, FakeClock]) -> None:
    store, clock = store_and_clock
    assert await store.try_begin_refresh(APP, 30)  # another instance took it, then died
    fetch = Fetcher()
    mgr = TokenManager(store, fetch, clock, app=APP, lease_s=30, poll_s=1.0)
    t0 = clock.monotonic()
    assert await mgr.get() == "tok-1"
    assert 30 <= clock.monotonic() - t0 <= 32
    assert fetch.calls == 1


async def test_near_expiry_token_used_while_other_instance_refreshes(
        store_and_clock: tuple[TokenStore, FakeClock]) -> None:
    store, clock = store_and_clock
    await store.save(APP, "old", clock.now() + timedelta(seconds=100))  # inside the 300 s margin
    assert await store.try_begin_refresh(APP, 30)  # someone else is refreshing
    fetch = Fetcher()
    mgr = TokenManager(store, fetch, clock, app=APP)
    t0 = clock.monotonic()
    assert await mgr.get() == "old"
    assert clock.monotonic() == t0 and fetch.calls == 0


async def test_cross_instance_single_flight(sessions: async_sessionmaker[AsyncSession]) -> None:
    """Two instances (own locks, one database): the second waits for the first's token."""
    clock = SystemClock()  # real, tiny polls: both instances must make progress concurrently
    fetch_a, fetch_b = Fetcher(), Fetcher()
    fetch_a.release.clear()
    a = TokenManager(DbTokenStore(sessions, clock), fetch_a, clock, app=APP, lease_s=5, poll_s=0.01)
    b = TokenManager(DbTokenStore(sessions, clock), fetch_b, clock, app=APP, lease_s=5, poll_s=0.01)
    task_a = asyncio.create_task(a.get())
    await fetch_a.started.wait()
    task_b = asyncio.create_task(b.get())
    await asyncio.sleep(0.05)
    assert not task_b.done()
    fetch_a.release.set()
    assert list(await asyncio.wait_for(asyncio.gather(task_a, task_b), 5)) == ["tok-1", "tok-1"]
    assert (fetch_a.calls, fetch_b.calls) == (1, 0)


async def test_many_instances_race_for_first_token(sessions: async_sessionmaker[AsyncSession]) -> None:
    """No holding back: instances racing from an empty table still call gettoken once per round."""
    clock = SystemClock()
    for round_ in range(5):
        app = f"{APP}:{round_}"
        fetches = [Fetcher() for _ in range(6)]
        managers = [TokenManager(DbTokenStore(sessions, clock), f, clock, app=app, lease_s=5, poll_s=0.005)
                    for f in fetches]
        tokens = await asyncio.wait_for(asyncio.gather(*(m.get() for m in managers)), 10)
        assert len(set(tokens)) == 1
        assert sum(f.calls for f in fetches) == 1


async def test_db_errors_never_carry_the_token(tmp_path: Path) -> None:
    """SQLAlchemy error text includes bound parameters; the store must not pass it on."""
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'no_tables.db'}")  # no access_token table
    try:
        clock = FakeClock()
        store = DbTokenStore(make_sessionmaker(engine), clock)
        with pytest.raises(TokenUnavailableError) as info:
            await store.save(APP, "THE-SECRET-TOKEN", clock.now())
        assert "THE-SECRET-TOKEN" not in str(info.value) and info.value.__cause__ is None
        assert info.value.retry_safe and not info.value.sent
        with pytest.raises(TokenUnavailableError):
            await TokenManager(store, Fetcher(), clock, app=APP).get()
    finally:
        await engine.dispose()
