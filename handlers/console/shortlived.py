"""Values kept a short while in the service process: computed at most once per key and window.

The console's live figures (the cockpit's today, the effect page's live part, the task counts)
are the whole bank's and the same for every viewer, and the pages say when they were computed
("截至 HH:MM"): each is computed once per ``[console] live_cache_s`` and every scope filters it.
The window is read from the injected clock (a clock set back computes again). Concurrent asks
for a key not kept wait for one computation. ``ttl_s = 0`` keeps nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Kept(Generic[T]):
    value: T
    at: datetime  # computed as of this moment
    serial: int  # which computation of its cache (a result built on it can name it)


class ShortLived(Generic[T]):
    """Per key, the value computed in the last ``ttl_s`` seconds."""

    def __init__(self, ttl_s: int) -> None:
        self.ttl = timedelta(seconds=ttl_s)
        self._kept: dict[Hashable, Kept[T]] = {}
        self._locks: dict[Hashable, asyncio.Lock] = {}
        self._serial = 0

    @property
    def serial(self) -> int:
        """How many values were computed (the serial of the latest)."""
        return self._serial

    def _fresh(self, key: Hashable, now: datetime) -> Kept[T] | None:
        kept = self._kept.get(key)
        return kept if kept is not None and kept.at <= now < kept.at + self.ttl else None

    async def get(self, key: Hashable, now: datetime, compute: Callable[[], Awaitable[T]], *,
                  renew: bool = False) -> Kept[T]:
        """The value kept under ``key``, or ``compute()``'s (kept); ``renew``: computed again
        whatever is kept (unless another ask renewed it while this one waited)."""
        kept = None if renew else self._fresh(key, now)
        if kept is not None:
            return kept
        if not self.ttl:
            self._serial += 1
            return Kept(await compute(), now, self._serial)
        seen = self._kept.get(key)
        async with self._locks.setdefault(key, asyncio.Lock()):
            kept = self._fresh(key, now)  # another ask computed it while this one waited
            if kept is None or (renew and kept is seen):
                value = await compute()
                self._serial += 1
                kept = Kept(value, now, self._serial)
                self._kept = {k: v for k, v in self._kept.items() if self._fresh(k, now)} | {key: kept}
                self._locks = {k: v for k, v in self._locks.items() if k in self._kept or v.locked()}
            return kept
