"""The sidebar bench end to end at a tiny size on PostgreSQL: every manager opens their own
customers' panels (HTML and JSON) and their own group's, and every one answers 200. Its
timings are for the bench itself, not asserted here."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from bench import _million as million
from bench import sidebar
from scrm.adapters.db.engine import make_engine

CUSTOMERS = 1000


async def test_sidebar_bench_smoke(db_url: str) -> None:
    if not db_url.startswith("postgresql"):
        pytest.skip("the bench's data set is generated on PostgreSQL only")
    await million.ready(db_url, CUSTOMERS, reuse=False)
    users, rounds = 4, 2
    out = await sidebar.measure(db_url, CUSTOMERS, users, rounds)
    tally = out["tally"]
    assert tally.errors == {}
    assert len(tally.latencies_ms["1:1 panel"]) == len(tally.latencies_ms["1:1 data"]) == users * rounds
    assert len(tally.latencies_ms["baseline"]) == users * rounds
    # The managers asked are the last four (m00036 … m00033); count their groups in the data.
    engine = make_engine(db_url)
    try:
        async with engine.connect() as conn:
            owned = (await conn.execute(text(
                "SELECT owner, count(*) FROM group_chat WHERE owner IN ('m00036', 'm00035', 'm00034', 'm00033') "
                "GROUP BY owner"))).all()
    finally:
        await engine.dispose()
    assert len(owned) == users
    assert len(tally.latencies_ms["group panel"]) == sum(min(rounds, int(n)) for _o, n in owned) > 0
