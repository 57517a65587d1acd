"""A cockpit view's whole result, kept in the service process for the next view of the same inputs.

With the stored periods kept (:mod:`handlers.console.periodcache`) and today's live part kept a
short while (:mod:`handlers.console.livecache`), what a repeated cockpit view still cost was the
service's own CPU: decoding the kept periods' JSON, adding today's figures to them key by key,
asking which of today's distinct customers the stored days had counted already, and ranking
every manager — ~0.1 s of the event loop for the whole bank, to give the result the previous view
of the same scope and period gave. So that result is kept, under everything it is made of, and
served only while all of it is unchanged:

* the scope: its department or manager and every covered manager's name and department;
* the period (first and last day, today), the playbook version and the time zone;
* the live days: which kept computation of the live cache each one's figures came from (its
  ``serial``). With ``live_cache_s = 0`` nothing live is kept, so nothing is kept here either;
* the stored days: when each was rolled up (:func:`handlers.console.periodcache.fingerprint`,
  read before the figures), and a marker row in ``console_period_cache`` holding this entry's
  random nonce. Storing a day's roll-up deletes every row covering the day in the roll-up's
  transaction (:func:`~handlers.console.periodcache.invalidate`) — the marker too, whichever
  process rolled up — so even a day rolled up again at the same instant (a fake clock) is seen.

A hit costs the fingerprint and the marker (two small reads) and no aggregation; a miss computes
as before and stores the marker in the view's transaction. Entries are per process and the
least recently used are dropped past ``size``; the returned result is shared, never to be changed.
"""

from __future__ import annotations

import asyncio
import secrets
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.console import periodcache

Compute = Callable[[], Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class _Entry:
    fingerprint: str  # the stored days' roll-up times when the result was computed
    live: tuple[tuple[date, int], ...]  # (live day, the live cache's serial of its figures)
    nonce: str  # also in the marker row: gone once a covered day is rolled up again
    value: dict[str, Any]
    made: int  # the cache's count of computed results when this one was kept


def view_key(*, since: date, until: date, today: date, playbook: str, zone: str, dept: str, manager: str,
             members: Mapping[str, tuple[str, str]]) -> str:
    """What a view's result depends on besides the live figures and the roll-ups (its marker's key)."""
    return periodcache.digest(["view", periodcache.VERSION, since, until, today, playbook, zone, dept, manager,
                               sorted((u, list(nd)) for u, nd in members.items())])


class ViewCache:
    """The results of the last ``size`` distinct views (scope × period) of this process."""

    def __init__(self, size: int = 256) -> None:
        self.size = size
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._locks: dict[str, asyncio.Lock] = {}
        self._made = 0

    async def view(self, db: AsyncSession, key: str, stored_days: Sequence[date], live: Mapping[date, int],
                   compute: Compute, *, fingerprint: str | None = None) -> dict[str, Any]:
        """The kept result under ``key`` if nothing it was made of changed, else ``compute()``'s (kept).

        ``fingerprint``: what the stored days were when read, taken before ``compute`` reads them
        (default: their cockpit roll-up times; the effect page gives its own days' build times).
        Concurrent views of one key compute once: the others wait, then take the result kept
        while they waited — from the same roll-ups and live figures they read, as fresh as their
        own would be; its marker is not committed yet, so only it is taken without the marker."""
        print_ = fingerprint if fingerprint is not None else await periodcache.fingerprint(db, stored_days)
        live_days = tuple(sorted(live.items()))
        made_before = self._made
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            entry = self._entries.get(key)
            if (entry is not None and entry.fingerprint == print_ and entry.live == live_days
                    and (entry.made > made_before or await periodcache.get(db, key, print_) == entry.nonce)):
                self._entries.move_to_end(key)
                return entry.value
            value = await compute()
            if not stored_days:  # no marker can vouch for it (nothing would invalidate it): not kept
                return value
            nonce = secrets.token_hex(16)
            await periodcache.put(db, key, stored_days, print_, nonce)
            self._made += 1
            self._entries[key] = _Entry(print_, live_days, nonce, value, self._made)
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)
            self._locks = {k: v for k, v in self._locks.items() if k in self._entries or v.locked()}
            return value
