"""Nightly scoring bench: tiers, segments, grades, RFM and stages for N customers.

    .venv/bin/python -m bench.segments --customers 1000000            # SQLite (a fresh file)
    .venv/bin/python -m bench.segments --customers 1000000 --db postgresql+asyncpg://postgres@127.0.0.1:5432/scrm_bench

A fresh, migrated database (``--db``: a PostgreSQL bench database, migrated and **emptied**) is
seeded with N customers, one active relation each (300 managers), a CRM record each (AUM,
products, age, transactions, logins …, spread so every tier, segment, grade and stage occurs),
then the run of ``handlers.lifecycle`` is timed as the service does it: chunk by chunk
(``[lifecycle] chunk``), one transaction each, with the shipped ``sop/segments.yaml`` and
``sop/lifecycle.yaml``, stage-change events and CRM syncs added to the inbox.

Two nights: the first places every customer and writes every CRM record's mirrored attributes
(the worst night, once after installing); the second, a day later, finds a few changes. Prints
each night's wall time and rate, the changes, and this process's peak RSS (goal: the first
night ≤ 120 s and < 1 GB for 1,000,000 on SQLite).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # also runnable as `python bench/segments.py`
    sys.path.insert(0, str(ROOT))

from sqlalchemy import insert

from bench._pg import copy_rows, fresh_database, is_postgres

#: "Now" in the data set; the bench's clock is fixed to it (and a day later).
ANCHOR = datetime(2026, 12, 1, 19, 30, tzinfo=UTC)  # 03:30 in Asia/Shanghai, the nightly slot
ZONE = ZoneInfo("Asia/Shanghai")
SEED_BATCH = 2_000
PRODUCTS = ("payroll", "mortgage", "wealth", "credit_card", "pension")


def _rows(lo: int, hi: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    customers, follows, crm = [], [], []
    for i in range(lo, hi):
        ext, crm_id = f"wm{i:08d}", f"c{i:08d}"
        customers.append({"external_userid": ext, "name": f"客户{i}", "type": 1, "gender": 0, "crm_id": crm_id,
                          "updated_at": ANCHOR})
        follows.append({"userid": f"m{i % 300:05d}", "external_userid": ext, "remark": "", "description": "",
                        "state": "", "add_way": 0, "status": "active",
                        "created_at": ANCHOR - timedelta(days=i % 400, minutes=i % 1440),
                        "last_contact_at": ANCHOR - timedelta(days=(i * 7) % 240, minutes=i % 600)})
        crm.append({"crm_id": crm_id, "updated_at": ANCHOR, "attributes": {
            "aum": (i * 7919) % 8_000_000, "products": [p for k, p in enumerate(PRODUCTS) if (i >> k) & 1],
            "age": 20 + i % 65, "customer_type": "merchant" if i % 17 == 0 else "retail",
            "car_owner": i % 5 == 0, "fx_txn_12m": i % 23 == 0, "account_age_days": (i * 3) % 2000,
            "txn_count_90d": i % 40, "txn_amount_90d": (i * 131) % 300_000, "app_logins_30d": i % 25,
            "last_txn_date": (ANCHOR.date() - timedelta(days=i % 200)).isoformat()}})
    return customers, follows, crm


async def seed(url: str, n: int) -> float:
    from handlers.contacts.api import Customer, Follow
    from handlers.crm.api import CrmCustomer
    from scrm.adapters.db.engine import make_engine, table_of

    started = time.perf_counter()
    engine = make_engine(url)
    postgres = is_postgres(url)
    try:
        for lo in range(0, n, SEED_BATCH):
            customers, follows, crm = _rows(lo, min(n, lo + SEED_BATCH))
            async with engine.begin() as conn:
                for model, rows in ((Customer, customers), (Follow, follows), (CrmCustomer, crm)):
                    if postgres:  # COPY: executemany takes many minutes for a million on PostgreSQL
                        columns = list(rows[0])
                        await copy_rows(conn, table_of(model).name, columns,
                                        [tuple(json.dumps(v) if isinstance(v, dict) else v for v in r.values())
                                         for r in rows])
                    else:
                        await conn.execute(insert(table_of(model)), rows)
        if postgres:
            async with engine.connect() as conn:
                await (await conn.execution_options(isolation_level="AUTOCOMMIT")).exec_driver_sql("ANALYZE")
    finally:
        await engine.dispose()
    return time.perf_counter() - started


async def night(url: str, now: datetime, chunk: int) -> tuple[float, float, int, int, int]:
    """One nightly run; returns (wall seconds, this process's CPU seconds, customers, CRM records
    written, stage changes). On a shared host the CPU time is the steadier figure: SQLite runs in
    this process, so it counts everything but PostgreSQL's own work and the wait for a core."""
    from sqlalchemy.ext.asyncio import async_sessionmaker

    import scrm.main  # noqa: F401  (every feature's tables, for the inbox's event kinds)
    from handlers.lifecycle.nightly import run_chunk
    from handlers.lifecycle.rules import load_lifecycle, load_segmentation
    from scrm.adapters.db.engine import make_engine
    from scrm.kernel.clock import FakeClock
    from scrm.kernel.config import Settings
    from scrm.kernel.inbox import Inbox

    seg, lc = load_segmentation(ROOT / "sop"), load_lifecycle(ROOT / "sop")
    engine = make_engine(url)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    inbox = Inbox(engine, sessions, Settings().inbox, FakeClock(now))
    today = now.astimezone(ZONE).date()
    scanned = mirrored = entered = 0
    started, cpu = time.perf_counter(), time.process_time()
    try:
        cursor: str | None = ""
        while cursor is not None:
            async with sessions() as session, session.begin():
                done = await run_chunk(session, inbox, seg, lc, today=today, now=now, tz=ZONE, cursor=cursor,
                                       limit=chunk)
            scanned += done.scanned
            mirrored += done.mirrored
            entered += len(done.entered)
            cursor = done.cursor
    finally:
        await engine.dispose()
    return time.perf_counter() - started, time.process_time() - cpu, scanned, mirrored, entered


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--db", help="a PostgreSQL bench database (emptied); default a fresh SQLite file")
    parser.add_argument("--chunk", type=int, default=2000)
    parser.add_argument("--nights", type=int, choices=(1, 2), default=2, help="1: the first night only")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        url = await fresh_database(args.db, Path(tmp))
        seeded = await seed(url, args.customers)
        print(f"{url.split('://')[0]}: {args.customers:,} customers seeded in {seeded:.1f} s "
              f"(peak RSS {_peak_mb():.0f} MB)")
        for label, now in (("first night", ANCHOR), ("next night", ANCHOR + timedelta(days=1)))[:args.nights]:
            secs, cpu, scanned, mirrored, entered = await night(url, now, args.chunk)
            print(f"{label}: {scanned:,} customers in {secs:.1f} s ({scanned / secs:,.0f}/s; CPU {cpu:.1f} s), "
                  f"{mirrored:,} CRM records written, {entered:,} stage changes; peak RSS {_peak_mb():.0f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
