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

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime

from handlers.console import rollup as r
from handlers.console.shortlived import Kept, ShortLived

Compute = Callable[[], Awaitable[r.Figures]]


@dataclass(frozen=True)
class LiveKey:
    playbook: str  # the running playbook's version
    zone: str
    day: date
    today: date  # the bank's date when it was computed: a partial day is never kept past it


class LiveCache(ShortLived[r.Figures]):
    """The live days computed in the last ``ttl_s`` seconds, per :class:`LiveKey` (the whole
    bank's figures, as ``rollup.compute_day`` gave them). A kept day's ``serial`` says which
    computation it is (unique in the process): a view built on the same serials read the same
    live figures (:mod:`handlers.console.viewcache` keys on it; ``at`` can repeat on a fake clock
    while the rows under it changed)."""

    @property
    def keeps(self) -> bool:
        """Whether a computed day is kept at all (``live_cache_s`` > 0)."""
        return bool(self.ttl)

    async def day(self, key: LiveKey, now: datetime, compute: Compute) -> Kept[r.Figures]:
        """The kept figures of ``key`` if fresh at ``now``, else ``compute()``'s (kept)."""
        return await self.get(key, now, compute)


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
            figures, at = kept.value, kept.at
            if self.serials is not None:
                self.serials[day] = kept.serial
        if day == today:
            self.as_of = at
        return figures
