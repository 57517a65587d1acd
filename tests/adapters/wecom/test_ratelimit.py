"""Token buckets, the 45009 slow-down and per-member app-message pacing (fake time only)."""

from __future__ import annotations

import asyncio
import heapq
from collections import deque

import pytest

from scrm.adapters.wecom.errors import LocalRateLimitError
from scrm.adapters.wecom.ratelimit import LimiterConfig, RateLimiter, TokenBucket, members_of, normalize_api
from scrm.kernel.clock import FakeClock
from scrm.kernel.config import WeComSettings


class SteppedClock(FakeClock):
    """A fake clock whose sleepers wake only when the test advances time past their deadline.

    FakeClock.sleep jumps time forward per sleeper, which serialises concurrent waiters; this one
    lets several coroutines wait at once, as on a real loop.
    """

    def __init__(self) -> None:
        super().__init__()
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = 0

    async def sleep(self, seconds: float) -> None:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._seq += 1
        heapq.heappush(self._sleepers, (self.monotonic() + max(0.0, seconds), self._seq, fut))
        await fut

    async def run_until_idle(self, step: float = 0.25, limit_s: float = 10_000.0) -> None:
        """Advance time in steps, waking sleepers, until nobody sleeps."""
        end = self.monotonic() + limit_s
        while self.monotonic() < end:
            await asyncio.sleep(0)
            await asyncio.sleep(0)
            if not self._sleepers:
                return
            self.advance(step)
            while self._sleepers and self._sleepers[0][0] <= self.monotonic():
                heapq.heappop(self._sleepers)[2].set_result(None)
        raise AssertionError("sleepers still waiting")


def max_in_window(times: list[float], window: float) -> int:
    """The most events inside any half-open window [t, t + window)."""
    best, q = 0, deque[float]()
    for t in sorted(times):
        q.append(t)
        while q and q[0] <= t - window:
            q.popleft()
        best = max(best, len(q))
    return best


@pytest.mark.parametrize(("count", "period"), [(10, 60.0), (30, 60.0), (6000, 60.0), (1000, 3600.0)])
async def test_bucket_never_exceeds_count_in_any_window(count: int, period: float) -> None:
    clock = FakeClock()
    bucket = TokenBucket.for_limit(clock, count, period)
    times = []
    for _ in range(count * 3):
        await bucket.acquire()
        times.append(clock.monotonic())
    assert max_in_window(times, period) <= count
    # ...and not needlessly slow: the sustained rate stays close to the configured one.
    assert (len(times) - 1) / (times[-1] - times[0]) >= 0.85 * count / period


async def test_concurrent_waiters_are_paced_in_arrival_order() -> None:
    clock = SteppedClock()
    bucket = TokenBucket(clock, capacity=2, per_second=1.0)
    started: list[tuple[int, float]] = []

    async def worker(i: int) -> None:
        await bucket.acquire()
        started.append((i, clock.monotonic()))

    tasks = [asyncio.create_task(worker(i)) for i in range(6)]
    await clock.run_until_idle(step=0.1)
    await asyncio.gather(*tasks)
    assert [i for i, _ in started] == list(range(6))
    t0 = started[0][1]
    offsets = [round(t - t0, 1) for _, t in started]
    assert offsets == [0.0, 0.0, 1.0, 2.0, 3.0, 4.0]


async def test_pause_drains_halves_and_recovers() -> None:
    clock = FakeClock()
    bucket = TokenBucket(clock, capacity=10, per_second=10.0, recover_s=60.0)
    bucket.pause(5.0)
    assert bucket.factor == 0.5
    t0 = clock.monotonic()
    await bucket.acquire()
    # Nobody starts during the pause, and the drained bucket refills at half rate afterwards.
    assert clock.monotonic() - t0 == pytest.approx(5.0 + 1 / 5.0)
    clock.advance(60.0)
    assert bucket.factor == 1.0
    assert bucket.idle


async def test_waiter_reserved_before_a_pause_requeues_behind_it() -> None:
    clock = SteppedClock()
    bucket = TokenBucket(clock, capacity=1, per_second=1.0)
    await bucket.acquire()  # empty now
    woke: list[float] = []

    async def waiter() -> None:
        await bucket.acquire()
        woke.append(clock.monotonic())

    t0 = clock.monotonic()
    task = asyncio.create_task(waiter())
    await asyncio.sleep(0)  # it reserved: due at t0 + 1
    bucket.pause(10.0)
    await clock.run_until_idle(step=0.5)
    await task
    assert woke[0] - t0 >= 10.0


async def test_refund_restores_tokens() -> None:
    clock = FakeClock()
    bucket = TokenBucket(clock, capacity=1, per_second=1.0)
    assert bucket.reserve() == 0.0
    assert bucket.reserve() == pytest.approx(1.0)
    bucket.refund()
    bucket.refund()
    assert bucket.idle


async def test_per_api_limits_come_from_settings() -> None:
    clock = FakeClock()
    settings = WeComSettings(per_api_per_minute=600, api_limits_per_minute={"externalcontact/mark_tag": 12})
    limiter = RateLimiter.from_settings(clock, settings)
    assert limiter.limit_for("/cgi-bin/externalcontact/mark_tag") == 12
    assert limiter.limit_for("externalcontact/get") == 600
    times = []
    for _ in range(36):
        await limiter.acquire("externalcontact/mark_tag")
        times.append(clock.monotonic())
    assert max_in_window(times, 60.0) <= 12
    # Another API has its own bucket: no wait.
    before = clock.monotonic()
    await limiter.acquire("externalcontact/get")
    assert clock.monotonic() == before


async def test_penalty_ladder_doubles_and_resets_on_success() -> None:
    clock = FakeClock()
    limiter = RateLimiter(clock, LimiterConfig(penalty_base_s=2.0, penalty_max_s=10.0))
    assert [limiter.penalize("message/send") for _ in range(4)] == [2.0, 4.0, 8.0, 10.0]
    limiter.record_success("message/send")
    assert limiter.penalize("message/send") == 2.0
    # The pause is shared: any caller of that API waits.
    t0 = clock.monotonic()
    await limiter.acquire("message/send")
    assert clock.monotonic() - t0 >= 2.0


async def test_member_limits_pace_each_member_separately() -> None:
    clock = FakeClock()
    limiter = RateLimiter(clock, LimiterConfig(member_per_minute=30, member_per_hour=1000))
    times = []
    for _ in range(90):
        await limiter.acquire_members(["alice"])
        times.append(clock.monotonic())
    assert max_in_window(times, 60.0) <= 30
    # Bob is untouched by Alice's traffic.
    before = clock.monotonic()
    await limiter.acquire_members(["bob"])
    assert clock.monotonic() == before


async def test_member_hourly_budget_spent_raises_without_reserving() -> None:
    clock = FakeClock()
    limiter = RateLimiter(clock, LimiterConfig(member_per_minute=1000, member_per_hour=20, member_max_wait_s=30))
    refused: LocalRateLimitError | None = None
    for _ in range(40):
        try:
            await limiter.acquire_members(["alice", "bob"])
        except LocalRateLimitError as exc:
            refused = exc
            break
    assert refused is not None, "hourly budget never ran out"
    assert refused.retry_after_s > 30
    assert not refused.sent and refused.retry_safe
    # The refused call reserved nothing: carol (fresh) and a retry after the wait both work.
    await limiter.acquire_members(["carol"])
    clock.advance(refused.retry_after_s)
    await limiter.acquire_members(["alice", "bob"])


async def test_idle_member_buckets_are_pruned(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock()
    limiter = RateLimiter(clock)
    monkeypatch.setattr(RateLimiter, "_MEMBER_PRUNE_AT", 5)
    for i in range(5):
        await limiter.acquire_members([f"u{i}"])
    clock.advance(3600)
    await limiter.acquire_members(["late"])
    assert set(limiter._member_min) == {"late"}


def test_helpers() -> None:
    assert normalize_api("/cgi-bin/externalcontact/get?x=1") == "externalcontact/get"
    assert normalize_api("message/send") == "message/send"
    assert members_of("b|a||b") == ["a", "b"]
    assert members_of("@all") == []
    assert members_of(None) == []
    with pytest.raises(ValueError):
        TokenBucket(FakeClock(), capacity=0, per_second=1)


def _most_in_a_minute(starts: list[float]) -> int:
    ordered, best, lo = sorted(starts), 0, 0
    for hi, t in enumerate(ordered):
        while t - ordered[lo] >= 60.0:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


@pytest.mark.parametrize(("shared", "most"), [(True, 600), (False, 1000)])
async def test_live_instances_split_the_per_api_limit(shared: bool, most: int) -> None:
    """Two instances at 600 calls a minute each would make 1,200; told there are two live
    instances, each takes half (WeCom counts per corp)."""
    clock = FakeClock()
    limiters = [RateLimiter(clock, LimiterConfig(per_api_per_minute=600)) for _ in range(2)]
    for limiter in limiters:
        limiter.bucket("externalcontact/get")  # an existing bucket is re-shared too
        if shared:
            limiter.set_instances(2)
    starts: list[float] = []

    async def calls(limiter: RateLimiter) -> None:
        for _ in range(700):
            await limiter.acquire("externalcontact/get")
            starts.append(clock.monotonic())
            await asyncio.sleep(0)

    await asyncio.gather(*(calls(limiter) for limiter in limiters))
    if shared:
        assert _most_in_a_minute(starts) <= most
    else:
        assert _most_in_a_minute(starts) > most
