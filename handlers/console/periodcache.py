"""The stored days' part of a period's figures, kept in ``console_period_cache``.

A cockpit view of 30 days over the whole bank aggregates ~350,000 roll-up rows for the period,
as many for the previous one, and the daily series: seconds of PostgreSQL work that gives the
same answer every time until one of those days is rolled up again. So what the database summed
and counted for the *stored* days (never today's live part) is kept as JSON under a key made of
everything that decides it — the scope's managers and their grouping, the days — and used only
while every one of those days still has the roll-up it was computed from:

* the ``fingerprint`` is the SHA-256 of each day's ``rolled_at``, read *before* the figures (a
  day rolled up again in between makes the row's fingerprint stale, never its figures);
* :func:`invalidate` deletes the rows covering a day whenever its roll-up is stored (in the
  roll-up's transaction), so even a rebuild at the same instant cannot leave one behind;
* the nightly job empties the table (tomorrow's views ask for other days) and computes the
  whole bank's standard periods again (:func:`handlers.console.jobs.warm_cockpit`).

A hit changes nothing but the time: the figures are those the database would have aggregated.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.console.models import ConsolePeriodCache, ConsoleRollupDay
from scrm.adapters.db.engine import dialect_of, table_of, upsert

#: Part of every key: a change of what is cached (its JSON shape, how it is computed) only has
#: to bump this for old rows never to be read.
VERSION = 1


def digest(value: Any) -> str:
    """The SHA-256 of plain JSON-able ``value`` (dates as ISO text), the same in every process."""
    return hashlib.sha256(json.dumps(value, sort_keys=True, ensure_ascii=False, default=str).encode()).hexdigest()



def cache_key(kind: str, *, dept: str, manager: str, userids: Sequence[str], days: Sequence[date],
              groups: Mapping[str, str] | None = None, per_user: bool = False) -> str:
    """What decides a stored part: the kind of figures, the scope (its department, manager and
    the managers it covers), the stored days, the grouping of managers and whether per-manager
    distinct counts are made."""
    return digest([VERSION, kind, dept, manager, sorted(userids), [d.isoformat() for d in days],
                 sorted((groups or {}).items()), per_user])


async def rolled_up(db: AsyncSession, first: date, last: date) -> dict[date, datetime]:
    """The days of ``first``..``last`` with a stored roll-up → when each was rolled up."""
    rows = await db.execute(select(ConsoleRollupDay.day, ConsoleRollupDay.rolled_at)
                            .where(ConsoleRollupDay.day >= first, ConsoleRollupDay.day <= last))
    return {day: at for day, at in rows.all()}


def fingerprint_of(rolled: Mapping[date, datetime], days: Sequence[date]) -> str:
    """:func:`fingerprint` from :func:`rolled_up`'s answer over a span holding ``days``."""
    wanted = set(days)
    return digest(sorted((d.isoformat(), at.isoformat()) for d, at in rolled.items() if d in wanted))


async def fingerprint(db: AsyncSession, days: Sequence[date]) -> str:
    """When each of ``days`` was rolled up (a day without a stored roll-up counts as such)."""
    if not days:
        return digest([])
    return fingerprint_of(await rolled_up(db, min(days), max(days)), days)


async def get(db: AsyncSession, key: str, print_: str) -> Any | None:
    """The cached figures under ``key`` if they were computed from these roll-ups, else None."""
    row = (await db.execute(select(ConsolePeriodCache.fingerprint, ConsolePeriodCache.data)
                            .where(ConsolePeriodCache.key == key))).first()
    return row.data.get("v") if row is not None and row.fingerprint == print_ else None


async def put(db: AsyncSession, key: str, days: Sequence[date], print_: str, value: Any) -> None:
    """Keep ``value`` (plain JSON) under ``key``, in the caller's transaction."""
    if not days:
        return
    await db.execute(upsert(dialect_of(db), table_of(ConsolePeriodCache), ["key"], ["first", "last", "fingerprint",
                                                                                    "data"]),
                     {"key": key, "first": min(days), "last": max(days), "fingerprint": print_, "data": {"v": value}})


async def invalidate(db: AsyncSession, day: date) -> None:
    """Forget every cached period that covers ``day`` (its roll-up is being stored again)."""
    await db.execute(delete(ConsolePeriodCache).where(ConsolePeriodCache.first <= day, ConsolePeriodCache.last >= day))


async def clear(db: AsyncSession) -> int:
    res = await db.execute(delete(ConsolePeriodCache))
    return int(getattr(res, "rowcount", 0) or 0)
