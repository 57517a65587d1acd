"""The 客群与会员 bench end to end at a tiny size on PostgreSQL: the data set has the shape its
docstring promises, the snapshot it takes counts every staged customer's segments and every
member, and it prints its figures. Its timings are for the bench itself, not asserted here."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from sqlalchemy import text

from bench import segpage
from scrm.adapters.db.engine import make_engine

CUSTOMERS = 1000


async def test_segpage_bench_smoke(db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    if not db_url.startswith("postgresql"):
        pytest.skip("the bench's data set is generated on PostgreSQL only")
    assert await segpage.main(["--customers", str(CUSTOMERS), "--db", db_url, "--rounds", "2"]) == 0
    out = capsys.readouterr().out
    assert "rebuild (the nightly job)" in out and out.count("view of ") == 3
    engine = make_engine(db_url)
    try:
        async with engine.connect() as conn:
            assert await conn.scalar(text("SELECT count(*) FROM member")) == segpage.MANAGERS
            assert await conn.scalar(text("SELECT count(*) FROM membership_account")) == CUSTOMERS
            followed = await conn.scalar(text("SELECT count(DISTINCT external_userid) FROM follow "
                                              "WHERE status = 'active'"))
            assert CUSTOMERS * 0.97 < (followed or 0) < CUSTOMERS
            # The whole bank's stored cells, from the raw rows read here in Python.
            cells: Counter[tuple[str, str]] = Counter()
            for segments, stage in (await conn.execute(text(
                    "SELECT segments::text, stage FROM customer_segment WHERE stage IS NOT NULL"))).all():
                for s in json.loads(segments) or [""]:
                    cells[(s, stage)] += 1
            stored = {(s, st): n for s, st, n in (await conn.execute(text(
                "SELECT segment, stage, count FROM console_seg_cell WHERE owner = '*'"))).all()}
            assert stored == dict(cells)
            members = await conn.scalar(text("SELECT sum(members) FROM console_seg_level WHERE owner <> '*'"))
            assert members == CUSTOMERS
    finally:
        await engine.dispose()
