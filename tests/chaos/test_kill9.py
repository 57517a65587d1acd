"""Crash-proof: the real service in child processes, killed with SIGKILL every 2–6 s and restarted
at once, while the WeCom sandbox (this process) sends adds (500; CHAOS_ADDS=1000 for the issue's
shape) plus group and tag events and
retries each until acknowledged. Afterwards: no welcome lost whose window was open when its event
was acknowledged, no duplicate, nothing stuck, and the outbox records what WeCom saw
(``tests/chaos/verdict.py``). On SQLite (one instance: SQLite means one instance; while it is
down WeCom's retries pile up) and on a fresh PostgreSQL database (two instances behind a load
balancer: a restarted one releases its predecessor's claims at once, a peer after
``dead_after_s``).

A failing run prints its summary and, per broken promise, examples with where the time went;
the service's logs stay in the test's tmp_path.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from tests.chaos.run import ChaosConfig, chaos_run
from tests.chaos.verdict import Verdict
from tests.support.pg import scratch_database


@asynccontextmanager
async def chaos_database(db: str, root: Path) -> AsyncIterator[str]:
    """An empty database for the run: an SQLite file, or a PostgreSQL database made for it."""
    if db == "sqlite":
        yield f"sqlite+aiosqlite:///{root / 'scrm.db'}"
        return
    async with scratch_database("scrm_chaos") as url:
        yield url


# CHAOS_ADDS adds per database (500 in CI, where both cases must fit in about two minutes on 2
# cores; 1,000 is the shape: CHAOS_ADDS=1000). The rate is what one instance killed every
# 2–6 s of serving keeps up with on a 2-core machine with room to spare (each restart costs ~2 s
# of CPU before it listens, each add ~40 ms): the contract is 0 lost, so a rate at the edge would
# make it flaky (CI runs it on 2 cores: 10/s and 16/s leave a third of the machine free). Two
# instances share the load and always leave one serving, hence the faster rate.
# The single-instance PostgreSQL case adds ~75 s and little the other two do not cover (the
# restart path on PostgreSQL runs in the two-instance case too): CHAOS_ALL=1 runs it.
ALL = os.environ.get("CHAOS_ALL", "") not in ("", "0")
ADDS = int(os.environ.get("CHAOS_ADDS", "500"))
CASES = [
    pytest.param("sqlite", ChaosConfig(instances=1, adds=ADDS, rate=10.0), id="sqlite-1"),
    pytest.param("postgresql", ChaosConfig(instances=2, adds=ADDS, rate=16.0), id="postgresql-2"),
    pytest.param("postgresql", ChaosConfig(instances=1, adds=ADDS, rate=14.0), id="postgresql-1",
                 marks=pytest.mark.skipif(not ALL, reason="set CHAOS_ALL=1 to run it (~75 s)")),
]


@pytest.mark.parametrize(("db", "config"), CASES)
async def test_kill9_loses_no_open_welcome_and_duplicates_nothing(db: str, config: ChaosConfig, tmp_path: Path,
                                                                   request: pytest.FixtureRequest) -> None:
    if request.config.getoption("--wall-clock-days"):
        # The service runs in child processes on the machine's real clock; the moved clock of
        # this process would put every callback outside its time window.
        pytest.skip("a real-process test: not run with the wall clock moved")
    async with chaos_database(db, tmp_path) as url:
        result = await chaos_run(config, db, url, tmp_path)
    verdict = Verdict(result)
    print("\n" + verdict.summary())
    assert not verdict.problems, verdict.summary() + "\n\n" + "\n".join(verdict.problems)
