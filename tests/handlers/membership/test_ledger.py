"""The ledger's two batch look-ups against a plain reading of the same random entries, both
databases: which (source, member) pairs are already posted (asked in several statements), and
the growth an upgrade window sees for every moment of a batch (the sum every window shares plus
the edge entries) — worked out here entry by entry over the whole ledger."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import async_sessionmaker

import scrm.main  # noqa: F401  (every feature's tables)
from handlers.membership import ledger
from handlers.membership.ledger import already_posted, growth_in_windows
from handlers.membership.models import GROWTH, POINTS, MembershipEntry
from scrm.adapters.db.engine import make_engine, table_of

T0 = datetime(2026, 11, 1, tzinfo=UTC)
MEMBERS = [f"wm{i:03d}" for i in range(40)]
SOURCES = [f"radar.open:m{i}" for i in range(12)] + [f"crm:e{i}" for i in range(30)]


def entries(rng: random.Random) -> list[dict[str, Any]]:
    """Growth and points entries over 60 days, some at the same moment (the edges are inclusive
    on one side only, so equal times matter)."""
    moments = [T0 + timedelta(hours=rng.randint(0, 60 * 24)) for _ in range(50)]
    rows: dict[tuple[str, str, str], dict[str, Any]] = {}
    for _ in range(1500):
        c, source, kind = rng.choice(MEMBERS), rng.choice(SOURCES), rng.choice((POINTS, GROWTH))
        at = rng.choice(moments)
        rows[(source, c, kind)] = {"external_userid": c, "kind": kind, "amount": rng.randint(1, 50), "reason": "earn",
                                   "behaviour": "b", "source": source, "at": at, "day": at.date(), "expires_at": None}
    return list(rows.values())


async def test_already_posted_and_the_growth_windows_match_a_plain_reading(
        db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(7)
    rows = entries(rng)
    engine = make_engine(db_url)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    monkeypatch.setattr(ledger, "PAIRS_PER_QUERY", 64)  # several statements for one batch
    try:
        async with sessions() as s, s.begin():
            await s.execute(insert(table_of(MembershipEntry)), rows)
        posted = {(r["source"], r["external_userid"]) for r in rows}
        asked = {(rng.choice(SOURCES), rng.choice(MEMBERS)) for _ in range(600)}
        assert len(asked & posted) > 50 and len(asked - posted) > 50  # both answers occur
        async with sessions() as s:
            assert await already_posted(s, asked) == asked & posted
            assert await already_posted(s, set()) == set()
        growth: list[tuple[str, datetime, int]] = [(r["external_userid"], r["at"], r["amount"]) for r in rows
                                                   if r["kind"] == GROWTH]
        moments = sorted({at for _, at, _ in growth})
        # Batches shorter than the window (a sum and edges), as long as it, and longer (edges only);
        # starting and ending on stored moments and between them.
        for window_days, first, last in ((7, moments[5], moments[5] + timedelta(days=2)),
                                         (7, moments[3] + timedelta(minutes=1), moments[30]),
                                         (30, moments[10], moments[10] + timedelta(days=30)),
                                         (10, moments[0], moments[-1]),
                                         (30, moments[20], moments[20])):
            window = timedelta(days=window_days)
            ids = MEMBERS[::3]
            async with sessions() as s:
                counted, edges = await growth_in_windows(s, ids, first, last, window)
            assert set(counted) | set(edges) <= set(ids)
            assert bool(counted) == (last - window < first)  # the shared sum is used where it can be
            checked = [t for t in moments if first <= t <= last] + [first, last]
            for t in checked:
                for c in ids:
                    plain = sum(a for m, at, a in growth if m == c and t - window < at <= t)
                    seen = counted.get(c, 0) + sum(a for at, a in edges.get(c, []) if t - window < at <= t)
                    assert seen == plain, (window_days, first, last, t, c)
    finally:
        await engine.dispose()
