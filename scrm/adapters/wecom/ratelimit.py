"""Async token buckets that keep the client under WeCom's frequency limits.

Three limits apply (PROTOCOL.md §5):

* per API per corp: WeCom allows 10,000 calls/min; we use ``per_api_per_minute`` (default 6,000)
  and the per-API overrides of ``api_limits_per_minute`` (keys like ``externalcontact/mark_tag``);
* per member, for app messages (message/send): 30/min and 1,000/h — WeCom *silently drops* the
  excess, so we must never exceed it;
* a shared slow-down: when WeCom still answers 45009/45033, every caller of that API pauses and
  the API's rate is halved, recovering (doubling) after each quiet ``recover_s``.

A limit of *N calls per period T* is a bucket of capacity ``burst`` refilled at
``(N - burst) / T``: in any window of length T at most ``burst + (N - burst) = N`` calls start,
so our own bursts can never trip WeCom's counter, whichever way it windows. (A bucket of
capacity N refilled at N/T would allow 2N in a window.)

Buckets reserve tokens up front (the balance may go negative) so concurrent waiters are served
in arrival order without a lock. Time comes from the injected clock; tests use ``FakeClock``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from scrm.adapters.wecom.errors import LocalRateLimitError
from scrm.adapters.wecom.shared_limits import Limit, SharedLimits
from scrm.kernel.clock import Clock
from scrm.kernel.config import WeComSettings

MESSAGE_SEND_API = "message/send"
# When a member's shared budget has no room within reach, ask again after this long.
SPENT_RETRY_S = 300.0
# When the shared count cannot be reached at all, ask again after this long.
SHARED_DOWN_RETRY_S = 5.0


class TokenBucket:
    """A token bucket with up-front reservation, pauses and a recoverable slow-down factor."""

    def __init__(self, clock: Clock, *, capacity: float, per_second: float,
                 recover_s: float = 60.0, min_factor: float = 1 / 16) -> None:
        if capacity <= 0 or per_second <= 0:
            raise ValueError("capacity and per_second must be positive")
        self._clock = clock
        self.capacity = float(capacity)
        self.per_second = float(per_second)
        self._recover_s = recover_s
        self._min_factor = min_factor
        self._tokens = self.capacity
        # This instance's part of a limit all instances share (1/N with N live instances).
        self.share = 1.0
        # Refill is accounted up to _t; a pause moves _t into the future so nothing refills
        # (and nobody starts) before it.
        self._t = clock.monotonic()
        self._factor = 1.0
        self._factor_t = self._t
        # Bumped by every pause so waiters that reserved before it re-queue behind it.
        self._epoch = 0

    @classmethod
    def for_limit(cls, clock: Clock, count: int, period_s: float, *, burst: int | None = None) -> TokenBucket:
        """A bucket letting at most ``count`` calls start in any ``period_s`` window (count >= 2)."""
        if count < 1:
            raise ValueError("count must be >= 1")
        b = max(1, min(count - 1, burst if burst is not None else max(1, count // 60)))
        return cls(clock, capacity=b, per_second=max(count - b, 1) / period_s)

    @property
    def factor(self) -> float:
        """Current slow-down factor (1.0 = full configured rate)."""
        self._refill(self._clock.monotonic())
        return self._factor

    @property
    def idle(self) -> bool:
        """Full and unslowed: indistinguishable from a fresh bucket (safe to forget)."""
        self._refill(self._clock.monotonic())
        return self._tokens >= self._cap() and self._factor >= 1.0

    def _refill(self, now: float) -> None:
        if now > self._t:
            self._tokens = min(self._cap(), self._tokens + (now - self._t) * self._rate())
            self._t = now
        if self._factor < 1.0 and now - self._factor_t >= self._recover_s:
            steps = int((now - self._factor_t) // self._recover_s)
            self._factor = min(1.0, self._factor * 2.0**steps)
            self._factor_t += steps * self._recover_s

    def reserve(self, n: float = 1.0) -> float:
        """Take ``n`` tokens now and return how many seconds the caller must wait before acting."""
        now = self._clock.monotonic()
        self._refill(now)
        self._tokens -= n
        debt_s = max(0.0, -self._tokens) / self._rate()
        return max(self._t, now) - now + debt_s

    def refund(self, n: float = 1.0) -> None:
        """Give back tokens from a reservation the caller abandoned."""
        self._tokens = min(self._cap(), self._tokens + n)

    def _rate(self) -> float:
        return self.per_second * self._factor * self.share

    def _cap(self) -> float:
        return max(1.0, self.capacity * self.share)

    def set_share(self, share: float) -> None:
        """Take ``share`` of the limit from now on (refill accounted at the old rate until now)."""
        self._refill(self._clock.monotonic())
        self.share = min(1.0, max(share, 1e-6))
        self._tokens = min(self._tokens, self._cap())

    async def acquire(self, n: float = 1.0) -> None:
        """Wait until ``n`` tokens are ours; re-queue if a pause started while we waited."""
        while True:
            epoch = self._epoch
            delay = self.reserve(n)
            if delay > 0:
                await self._clock.sleep(delay)
            if epoch == self._epoch:
                return
            # Our token was drained by the pause; don't double-count it.
            self.refund(n)

    def pause(self, seconds: float) -> None:
        """Stop everyone for ``seconds``, drain the bucket and halve the rate (45009/45033)."""
        now = self._clock.monotonic()
        self._refill(now)
        self._tokens = min(self._tokens, 0.0)
        self._t = max(self._t, now + seconds)
        self._factor = max(self._min_factor, self._factor / 2.0)
        self._factor_t = now + seconds
        self._epoch += 1


@dataclass(frozen=True)
class LimiterConfig:
    """Numbers for :class:`RateLimiter`; :meth:`from_settings` maps the config section."""

    per_api_per_minute: int = 6000
    api_limits_per_minute: Mapping[str, int] | None = None
    member_per_minute: int = 30
    member_per_hour: int = 1000
    # Longest wait for a member's app-message budget before giving the call back to the outbox.
    member_max_wait_s: float = 120.0
    # Pause after 45009/45033, doubling per consecutive strike: WeCom blocks a minute-limit for 60 s.
    penalty_base_s: float = 2.0
    penalty_max_s: float = 60.0

    @classmethod
    def from_settings(cls, s: WeComSettings) -> LimiterConfig:
        return cls(
            per_api_per_minute=s.per_api_per_minute,
            api_limits_per_minute=dict(s.api_limits_per_minute),
            member_per_minute=s.app_msg_per_member_per_minute,
            member_per_hour=s.app_msg_per_member_per_hour,
        )


def normalize_api(api: str) -> str:
    """``/cgi-bin/externalcontact/get`` -> ``externalcontact/get`` (the config key form)."""
    api = api.strip().split("?", 1)[0].strip("/")
    return api.removeprefix("cgi-bin/")


def members_of(touser: str | None) -> list[str]:
    """Member ids of a message/send ``touser`` (``a|b|c``); ``@all`` cannot be paced per member."""
    if not touser or touser == "@all":
        return []
    return sorted({u for u in touser.split("|") if u})


class RateLimiter:
    """All buckets of one client: per API, per member (app messages), and the 45009 slow-down.

    One instance is shared by every coroutine using the client, so the slow-down after a 45009
    applies to all of them at once.
    """

    # Forget idle member buckets once this many exist (a full bucket equals a new one).
    _MEMBER_PRUNE_AT = 10_000

    def __init__(self, clock: Clock, config: LimiterConfig | None = None, *,
                 shared: SharedLimits | None = None) -> None:
        self._clock = clock
        self.config = config or LimiterConfig()
        # Every instance's app messages to one member count together (WeCom counts per corp).
        self.shared = shared
        self._limits = {normalize_api(k): v for k, v in (self.config.api_limits_per_minute or {}).items()}
        self._api: dict[str, TokenBucket] = {}
        self._strikes: dict[str, int] = {}
        self._member_min: dict[str, TokenBucket] = {}
        self._member_hour: dict[str, TokenBucket] = {}
        self.api_share = 1.0

    @classmethod
    def from_settings(cls, clock: Clock, settings: WeComSettings, *, shared: SharedLimits | None = None) -> RateLimiter:
        return cls(clock, LimiterConfig.from_settings(settings), shared=shared)

    def limit_for(self, api: str) -> int:
        """Calls per minute allowed for ``api``."""
        return self._limits.get(normalize_api(api), self.config.per_api_per_minute)

    def bucket(self, api: str) -> TokenBucket:
        """The shared bucket of one API (created on first use)."""
        key = normalize_api(api)
        b = self._api.get(key)
        if b is None:
            b = self._api[key] = TokenBucket.for_limit(self._clock, self.limit_for(key), 60.0)
            b.set_share(self.api_share)
        return b

    def set_instances(self, live: int) -> None:
        """``live`` instances call WeCom for this corp: each paces its API calls at 1/live of the
        per-API limit (WeCom counts per corp), told by the registry of live instances at each beat."""
        share = 1.0 / max(1, live)
        if share == self.api_share:
            return
        self.api_share = share
        for b in self._api.values():
            b.set_share(share)

    async def acquire(self, api: str) -> None:
        """Wait for a slot for one call of ``api``."""
        await self.bucket(api).acquire()

    def penalize(self, api: str) -> float:
        """WeCom answered 45009/45033: pause ``api`` for everyone and halve its rate.

        Returns the pause in seconds; it doubles with consecutive strikes up to ``penalty_max_s``.
        """
        key = normalize_api(api)
        strikes = self._strikes.get(key, 0)
        self._strikes[key] = strikes + 1
        pause = min(self.config.penalty_max_s, self.config.penalty_base_s * 2.0**strikes)
        self.bucket(key).pause(pause)
        return pause

    def record_success(self, api: str) -> None:
        """A call went through: the next 45009 starts the pause ladder from the bottom again."""
        self._strikes.pop(normalize_api(api), None)

    def _member_buckets(self, member: str) -> tuple[TokenBucket, TokenBucket]:
        if len(self._member_min) >= self._MEMBER_PRUNE_AT:
            self._prune_members()
        mb = self._member_min.get(member)
        if mb is None:
            # A small burst: a manager's few notifications go out at once, the rest are spaced.
            per_min = self.config.member_per_minute
            mb = self._member_min[member] = TokenBucket.for_limit(
                self._clock, per_min, 60.0, burst=max(1, per_min // 6))
        hb = self._member_hour.get(member)
        if hb is None:
            per_h = self.config.member_per_hour
            hb = self._member_hour[member] = TokenBucket.for_limit(
                self._clock, per_h, 3600.0, burst=max(1, per_h // 60))
        return mb, hb

    def _prune_members(self) -> None:
        for member in [m for m, b in self._member_min.items() if b.idle and self._member_hour[m].idle]:
            del self._member_min[member]
            del self._member_hour[member]

    async def acquire_members(self, members: Iterable[str], *, api: str = MESSAGE_SEND_API) -> None:
        """Wait until every member may receive one more app message (30/min, 1,000/h each).

        Raises :class:`LocalRateLimitError` (nothing reserved, nothing sent) when that would take
        longer than ``member_max_wait_s`` — typically a spent hourly budget.
        """
        reserved: list[TokenBucket] = []
        delay = 0.0
        members = list(members)
        for member in members:
            for b in self._member_buckets(member):
                delay = max(delay, b.reserve())
                reserved.append(b)
        if delay <= self.config.member_max_wait_s and self.shared is not None:
            try:
                delay = max(delay, await self._reserve_shared(members))
            except Exception as exc:  # the shared count is out of reach (a locked or lost database)
                for b in reserved:
                    b.refund()
                # Nothing was sent: the caller (the outbox) tries again later, never on a guess.
                raise LocalRateLimitError(f"{api}: the shared app-message count is unavailable "
                                          f"({type(exc).__name__}: {exc}); retry in {SHARED_DOWN_RETRY_S:.0f} s",
                                          api=api, retry_after_s=SHARED_DOWN_RETRY_S) from None
        if delay > self.config.member_max_wait_s:
            for b in reserved:
                b.refund()
            raise LocalRateLimitError(
                f"{api}: app-message budget of {len(members)} member(s) spent; retry in {math.ceil(delay)} s",
                api=api, retry_after_s=min(delay, SPENT_RETRY_S))
        if delay > 0:
            await self._clock.sleep(delay)

    async def _reserve_shared(self, members: list[str]) -> float:
        """The wait for every member's place in the counts all instances share (inf: none in
        reach). A place reserved for one member stays taken even if another's is out of reach:
        erring towards fewer messages is what keeps WeCom from dropping one."""
        assert self.shared is not None
        now = self._clock.now().timestamp()
        horizon = self.config.member_max_wait_s
        delay = 0.0
        for member in members:
            for limit in (Limit(f"member:{member}:min", self.config.member_per_minute, 60.0),
                          Limit(f"member:{member}:hour", self.config.member_per_hour, 3600.0)):
                wait = await self.shared.reserve(limit, now, horizon)
                if wait is None:
                    return math.inf
                delay = max(delay, wait)
        return delay
