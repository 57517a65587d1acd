"""WeCom limits counted across every instance: through the database, or Redis where configured.

WeCom counts app messages per member (30 a minute, 1,000 an hour) per corp and silently drops
the excess, so instances pacing on their own would together exceed it. Each limited call first
reserves a place in a shared count.

A limit of N calls per period T is kept as ``SLICES`` slices of T / SLICES, each allowing at most
N // (SLICES + 1) calls: any window of length T overlaps at most SLICES + 1 slices, so whatever
way WeCom windows its count, no T ever sees more than N. A reservation takes the first slice,
from now on, that still has room, and the caller waits until that slice begins. Both backends
do the same arithmetic; only the atomic "add one if below the cap" differs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import delete, text
from sqlalchemy.ext.asyncio import AsyncEngine

from scrm.adapters.wecom.tables import RateSlot

SLICES = 6
# Forget slices older than this many periods (the count only looks forward).
KEEP_PERIODS = 2
# Clean old slices once per this many reservations.
CLEAN_EVERY = 500


@dataclass(frozen=True)
class Limit:
    """``count`` calls per ``period_s``, under ``key`` (e.g. ``member:zhangwei:min``)."""

    key: str
    count: int
    period_s: float

    @property
    def slice_s(self) -> float:
        return self.period_s / SLICES

    @property
    def per_slice(self) -> int:
        return max(1, self.count // (SLICES + 1))


class SharedCounter(Protocol):
    """Adds one to ``(key, slot)`` when it is below ``cap``; True when it did. The count may be
    forgotten after ``forget_at`` (epoch seconds; ``now`` is the caller's clock)."""

    async def take(self, key: str, slot: int, cap: int, now: float, forget_at: float) -> bool: ...

    async def close(self) -> None: ...


class SharedLimits:
    """Reserve places under shared limits; the counter is the database's or Redis's."""

    def __init__(self, counter: SharedCounter) -> None:
        self.counter = counter

    async def reserve(self, limit: Limit, now: float, horizon_s: float) -> float | None:
        """Seconds to wait before the call may start (0: now), having reserved its place; None
        when no slice within ``horizon_s`` has room (nothing reserved)."""
        first = math.floor(now / limit.slice_s)
        last = math.floor((now + horizon_s) / limit.slice_s)
        for slot in range(first, last + 1):
            forget_at = (slot + 1) * limit.slice_s + limit.period_s * KEEP_PERIODS
            if await self.counter.take(limit.key, slot, limit.per_slice, now, forget_at):
                return max(0.0, slot * limit.slice_s - now)
        return None


class DatabaseCounter:
    """The shared count in ``rate_slot``: one upsert that increments only below the cap."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._taken = 0
        # INSERT ... ON CONFLICT DO UPDATE ... WHERE: the same statement on SQLite (3.35+) and
        # PostgreSQL; a full slice updates nothing and returns no row.
        self._take = text(
            "INSERT INTO rate_slot (key, slot, used, forget_at) VALUES (:key, :slot, 1, :forget_at) "
            "ON CONFLICT (key, slot) DO UPDATE SET used = rate_slot.used + 1 WHERE rate_slot.used < :cap "
            "RETURNING used")

    async def take(self, key: str, slot: int, cap: int, now: float, forget_at: float) -> bool:
        async with self.engine.begin() as conn:
            row = (await conn.execute(self._take, {"key": key, "slot": slot, "cap": cap,
                                                   "forget_at": math.ceil(forget_at)})).first()
            self._taken += 1
            if self._taken % CLEAN_EVERY == 0:  # counts nobody looks at any more: an occasional sweep
                await conn.execute(delete(RateSlot).where(RateSlot.forget_at < now))
        return row is not None

    async def close(self) -> None:
        return None


# Redis: one round trip per slice, atomically: INCR, set the expiry on first use, undo above the cap.
_REDIS_TAKE = """
local used = redis.call('INCR', KEYS[1])
if used == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
if used > tonumber(ARGV[1]) then
  redis.call('DECR', KEYS[1])
  return 0
end
return 1
"""


class RedisCounter:
    """The shared count in Redis (``[wecom] shared_limits = "redis"``); keys expire on their own."""

    def __init__(self, url: str, *, prefix: str = "scrm:rate:") -> None:
        import redis.asyncio as redis

        self.client: Any = redis.from_url(url)
        self.prefix = prefix
        self._script: Any = self.client.register_script(_REDIS_TAKE)

    async def take(self, key: str, slot: int, cap: int, now: float, forget_at: float) -> bool:
        ttl_ms = max(1000, int((forget_at - now) * 1000))
        result = await self._script(keys=[f"{self.prefix}{key}:{slot}"], args=[cap, ttl_ms])
        return bool(int(result))

    async def close(self) -> None:
        await self.client.aclose()
