"""The console bench end to end at a tiny size on PostgreSQL (the data set is generated with
PostgreSQL's ``generate_series``): the data set has the shape its docstring promises, every day
the 30-day cockpit reads is rolled up, and every page asked answers 200. Its timings are for the
bench itself, not asserted here."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import text

from bench import _million as million
from bench import console
from scrm.adapters.db.engine import make_engine

CUSTOMERS = 1000


async def _count(url: str, sql: str) -> int:
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            return int(await conn.scalar(text(sql)) or 0)
    finally:
        await engine.dispose()


async def test_console_bench_smoke(db_url: str) -> None:
    if not db_url.startswith("postgresql"):
        pytest.skip("the bench's data set is generated on PostgreSQL only")
    how, _ = await million.ready(db_url, CUSTOMERS, reuse=False)
    assert how == "generated" and await million.held(db_url, CUSTOMERS)
    # The docstring's bank: 36 managers (the floor) and 6 sub-branch heads; one relation per
    # customer and a second for about every tenth; ten timeline rows per customer; N/100 groups.
    assert await _count(db_url, "SELECT count(*) FROM member") == 36 + 6
    assert await _count(db_url, "SELECT count(*) FROM customer") == CUSTOMERS
    assert await _count(db_url, "SELECT count(DISTINCT external_userid) FROM follow") == CUSTOMERS
    assert await _count(db_url, "SELECT max(n) FROM (SELECT count(*) AS n FROM follow GROUP BY external_userid) x") == 2
    assert CUSTOMERS // 20 < await _count(db_url, "SELECT count(*) FROM follow") - CUSTOMERS < CUSTOMERS // 5
    assert await _count(db_url, "SELECT count(*) FROM timeline") == 10 * CUSTOMERS
    assert await _count(db_url, "SELECT count(*) FROM group_chat") == CUSTOMERS // 100

    users, rounds = 4, 1
    out = await console.measure(db_url, CUSTOMERS, users, rounds, processes=2)

    # 2026-12-01 is a Tuesday: the 30 days from 11-02 (a Monday), the 30 before from 10-03.
    today = date(2026, 12, 1)
    assert out["rollup"]["today"] == today
    assert out["rollup"]["stored"] == (today - date(2026, 10, 3)).days == 59
    assert len(out["rollup"]["days"]) == 59 and out["rollup"]["nightly_rows"] > 0
    assert out["cockpit_first"]["status"] == 200
    tally = out["tally"]
    assert tally.errors == {}
    # Two ops admins, an auditor and a sub-branch head: each page of the core once per user, ops
    # and audit for the three who may see them, the baseline once per user.
    for label in ("home", "tasks", "cockpit 7", "cockpit 30", "baseline"):
        assert len(tally.latencies_ms[label]) == users * rounds, label
    assert len(tally.latencies_ms["ops"]) == len(tally.latencies_ms["audit"]) == 3 * rounds
    assert out["service"].end["peak_mb"] > 0
    # Two service processes, two users dealt to each: each answered those users' requests.
    service = out["service"]
    assert len(service.pids) == 2 and len(set(service.bases)) == 2
    total = sum(len(v) for v in tally.latencies_ms.values())
    assert sorted(tally.served_by) == sorted(service.bases) and sum(tally.served_by.values()) == total
    assert all(n >= 5 * rounds for n in tally.served_by.values())
    assert console.percentile([float(x) for x in range(1, 21)], 0.95) == 19.0
    assert console.cockpit_first_day(today) == today - timedelta(days=59)


def test_data_set_sop_rows_name_shipped_steps() -> None:
    """The data set's SOP rows carry the engine's keys of two shipped steps, so the effect page
    counts them (a job key without its step is dropped, and the page would measure nothing)."""
    from pathlib import Path

    from scrm.playbook.loader import load_playbook

    root = Path(__file__).resolve().parents[2]
    playbook = load_playbook(root / "sop", root / "materials", today=date(2026, 12, 1))
    steps = {f"path:{p.path}": [s.key for s in p.steps] for p in playbook.paths.values()}
    assert million.PUSH_STEP in steps[million.PUSH_SOURCE]
    assert million.SKIP_STEP in steps[million.SKIP_SOURCE]
