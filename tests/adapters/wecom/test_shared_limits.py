"""Per-member app-message limits counted by every instance together, in the database or Redis:
two instances sending to one manager never exceed WeCom's 30 a minute (which would drop the rest)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable

import pytest

from scrm.adapters.db.engine import make_engine
from scrm.adapters.wecom.api import WeComClient
from scrm.adapters.wecom.errors import LocalRateLimitError
from scrm.adapters.wecom.ratelimit import LimiterConfig, RateLimiter
from scrm.adapters.wecom.shared_limits import DatabaseCounter, RedisCounter, SharedCounter, SharedLimits
from scrm.adapters.wecom.token import MemoryTokenStore
from scrm.kernel.clock import FakeClock
from tests.fakes.sandbox import running_sandbox

REDIS_URL = "redis://127.0.0.1:6379/15"


@pytest.fixture(params=["database", "redis"])
async def counter(request: pytest.FixtureRequest, sqlite_url: str) -> AsyncIterator[Callable[[], SharedCounter]]:
    """A factory of counters sharing one store (one per "instance"): the database (SQLite here;
    PostgreSQL below) or Redis (a fresh key prefix per test)."""
    if request.param == "database":
        engine = make_engine(sqlite_url)
        yield lambda: DatabaseCounter(engine)
        await engine.dispose()
        return
    prefix = f"scrm-test:{uuid.uuid4().hex[:8]}:"
    probe = RedisCounter(REDIS_URL, prefix=prefix)
    try:
        await probe.client.ping()
    except Exception as exc:  # any connection problem means: no Redis here
        await probe.close()
        pytest.skip(f"Redis not reachable at {REDIS_URL}: {exc}")
    made = [probe]

    def make() -> SharedCounter:
        made.append(RedisCounter(REDIS_URL, prefix=prefix))
        return made[-1]

    yield make
    for c in made:
        await c.close()


def most_in_any_window(starts: list[float], window_s: float) -> int:
    """The largest number of starts inside any window of ``window_s`` (independent of the code)."""
    ordered = sorted(starts)
    best = lo = 0
    for hi, t in enumerate(ordered):
        while t - ordered[lo] >= window_s:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


async def sends_of_two_instances(clock: FakeClock, a: RateLimiter, b: RateLimiter, n: int) -> list[float]:
    starts = []
    for i in range(n):
        await (a if i % 2 else b).acquire_members(["zhangwei"])
        starts.append(clock.monotonic())
    return starts


async def test_two_instances_together_stay_under_30_a_minute(counter: Callable[[], SharedCounter]) -> None:
    clock = FakeClock()
    a = RateLimiter(clock, shared=SharedLimits(counter()))
    b = RateLimiter(clock, shared=SharedLimits(counter()))
    starts = await sends_of_two_instances(clock, a, b, 90)
    assert most_in_any_window(starts, 60.0) <= 30
    assert starts[-1] - starts[0] < 5 * 60  # paced, not stalled


async def test_without_sharing_two_instances_would_exceed_it() -> None:
    """The check above can fail: each instance alone allows 30, together 60."""
    clock = FakeClock()
    starts = await sends_of_two_instances(clock, RateLimiter(clock), RateLimiter(clock), 90)
    assert most_in_any_window(starts, 60.0) > 30


async def test_a_spent_budget_is_given_back_to_the_caller_to_retry_later(counter: Callable[[], SharedCounter]) -> None:
    clock = FakeClock()
    config = LimiterConfig(member_per_minute=30, member_per_hour=14, member_max_wait_s=60.0)
    limiter = RateLimiter(clock, config, shared=SharedLimits(counter()))
    with pytest.raises(LocalRateLimitError) as caught:
        for _ in range(20):
            await limiter.acquire_members(["lina"])
    assert 0 < caught.value.retry_after_s <= 300


async def test_on_postgresql_too(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        clock = FakeClock()
        a = RateLimiter(clock, shared=SharedLimits(DatabaseCounter(engine)))
        b = RateLimiter(clock, shared=SharedLimits(DatabaseCounter(engine)))
        assert most_in_any_window(await sends_of_two_instances(clock, a, b, 70), 60.0) <= 30
    finally:
        await engine.dispose()


async def test_two_clients_on_one_sandbox_lose_no_message(sqlite_url: str) -> None:
    """End to end: WeCom (the sandbox) drops what exceeds 30 a minute for one member."""
    clock = FakeClock()
    engine = make_engine(sqlite_url)
    async with running_sandbox(clock) as sb:
        sb.state.add_member("zhangwei", "张伟")
        clients = [WeComClient(sb.client._settings, token_store=MemoryTokenStore(clock), clock=clock,
                               limiter=RateLimiter(clock, shared=SharedLimits(DatabaseCounter(engine))))
                   for _ in range(2)]
        try:
            for i in range(40):
                await clients[i % 2].call("message/send", {"touser": "zhangwei", "msgtype": "text", "agentid": 1000002,
                                                           "text": {"content": f"提醒{i}"}})
        finally:
            for c in clients:
                await c.close()
            await engine.dispose()
        assert sb.state.dropped_messages() == []
        assert len(sb.state.delivered_messages(kind="app", to="zhangwei")) == 40


async def test_an_unreachable_shared_count_sends_nothing_and_asks_to_retry() -> None:
    """A locked or lost database must not turn a notice into an ambiguous call: nothing is sent,
    the caller retries (the outbox keeps the action pending)."""

    class Broken:
        async def take(self, key: str, slot: int, cap: int, now: float, forget_at: float) -> bool:
            raise OSError("database is locked")

        async def close(self) -> None:
            return None

    clock = FakeClock()
    limiter = RateLimiter(clock, shared=SharedLimits(Broken()))
    with pytest.raises(LocalRateLimitError, match="shared app-message count is unavailable") as caught:
        await limiter.acquire_members(["zhangwei"])
    assert caught.value.retry_after_s == 5.0
