"""Today's live part of the cockpit, kept a short while in the service (``[console] live_cache_s``).

Every cockpit view needs the days the nightly job has not rolled up — always today, up to now —
computed from the raw rows: ~0.45 s of PostgreSQL and ~0.3 s of the service's CPU on 1,000,000
customers, the same work for every viewer and every scope. What is kept is the *whole bank's*
figures of such a day (every scope filters them to its managers, as an uncached view does), so
one computation serves every scope and period for the window, and each view says "截至 HH:MM":
the moment its today was computed, never later than the figures.

A kept day is used only while all of this holds, else it is computed again:

* the same playbook version and time zone (a reload may move the day's bounds, and reasons);
* the same bank date, and the same role of the day — today's partial figures are keyed apart
  from a past day's whole ones, so after midnight yesterday's partial figures are never served
  as the whole day, nor anything kept under another date as today;
* computed at most ``live_cache_s`` seconds ago by the injected clock (and not in its future:
  a clock set back never finds figures from "later").

``live_cache_s = 0`` turns it off: every view computes its live days, as before. The cache lives
in one service process (the console's web app), so two processes may show two different "as
of" moments for a minute; reports, the BI API and the digest never use it — they are exact at
the moment they are asked.

Concurrent views of a day that is not kept wait for one computation (a lock per key) instead
of each running the same dozen statements.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from handlers.console import rollup as r

Compute = Callable[[], Awaitable[r.Figures]]


@dataclass(frozen=True)
class LiveKey:
    playbook: str  # the running playbook's version
    zone: str
    day: date
    today: date  # the bank's date when it was computed: a partial day is never kept past it


@dataclass(frozen=True)
class LiveDay:
    figures: r.Figures  # the whole bank's, as rollup.compute_day gave them
    at: datetime  # computed as of this moment
    # Which computation this is (unique in the process): a view built on the same serials read
    # the same live figures (handlers.console.viewcache keys on it; ``at`` can repeat on a fake
    # clock while the rows under it changed).
    serial: int = 0


class LiveCache:
    """The live days computed in the last ``ttl_s`` seconds, per :class:`LiveKey`."""

    def __init__(self, ttl_s: int) -> None:
        self.ttl = timedelta(seconds=ttl_s)
        self._days: dict[LiveKey, LiveDay] = {}
        self._locks: dict[LiveKey, asyncio.Lock] = {}
        self._serials = itertools.count(1)

    @property
    def keeps(self) -> bool:
        """Whether a computed day is kept at all (``live_cache_s`` > 0)."""
        return bool(self.ttl)

    def _fresh(self, key: LiveKey, now: datetime) -> LiveDay | None:
        kept = self._days.get(key)
        if kept is not None and kept.at <= now < kept.at + self.ttl:
            return kept
        return None

    async def day(self, key: LiveKey, now: datetime, compute: Compute) -> LiveDay:
        """The kept figures of ``key`` if fresh at ``now``, else ``compute()``'s (kept)."""
        if not self.ttl:
            return LiveDay(await compute(), now, next(self._serials))
        kept = self._fresh(key, now)
        if kept is not None:
            return kept
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            kept = self._fresh(key, now)  # another view computed it while this one waited
            if kept is not None:
                return kept
            fresh = LiveDay(await compute(), now, next(self._serials))
            # Forget what can no longer be served (another date, expired), then keep this one.
            self._days = {k: v for k, v in self._days.items() if k.today == key.today and self._fresh(k, now)}
            self._days[key] = fresh
            self._locks = {k: v for k, v in self._locks.items() if k in self._days or v.locked()}
            return fresh


class LiveReader:
    """How one cockpit computation gets its live days: through ``cache`` (the page's), or
    directly (reports, tests). ``as_of`` is the moment today's figures were computed;
    ``serials`` which kept computations the live days came from (None once a day was computed
    without being kept: then nothing built on it can be reused)."""

    def __init__(self, cache: LiveCache | None = None, playbook: str = "") -> None:
        self.cache = cache
        self.playbook = playbook
        self.as_of: datetime | None = None
        self.serials: dict[date, int] | None = {} if cache is not None and cache.keeps else None

    async def day(self, day: date, today: date, now: datetime, zone: str, compute: Compute) -> r.Figures:
        if self.cache is None:
            figures, at = await compute(), now
        else:
            kept = await self.cache.day(LiveKey(self.playbook, zone, day, today), now, compute)
            figures, at = kept.figures, kept.at
            if self.serials is not None:
                self.serials[day] = kept.serial
        if day == today:
            self.as_of = at
        return figures
