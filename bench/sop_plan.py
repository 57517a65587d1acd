"""Plan one day of the shipped playbook for N customers and M groups, on SQLite or PostgreSQL.

    .venv/bin/python -m bench.sop_plan --customers 1000000 --groups 20000
    .venv/bin/python -m bench.sop_plan --db postgresql+asyncpg://postgres@127.0.0.1:5432/scrm_bench

Seeds a migrated database fast (SQLite: raw sqlite3 executemany; PostgreSQL: ``COPY`` through
asyncpg, then ``ANALYZE``), then runs the real planner for every slot of one day, counting
decisions without writing (a plan). Prints seconds and peak RSS. Both databases get the same
rows (one seeded RNG). Goal: ≤ 60 s and < 1 GB for 1,000,000 customers / 20,000 groups
(streaming, not loading all).

``--mode day`` (default) is :class:`DayPlanner`, as ``scrm sop plan`` runs: one pass over the
slots with caps carried from slot to slot. ``--mode slots`` runs one :class:`SlotPlanner` per
slot, as the scheduler's jobs do (here without the executor, so slots do not see each other).

``--db FILE`` reuses a seeded SQLite file (seeding 1,000,000 customers takes a minute or two).
``--db postgresql+asyncpg://...`` migrates that database and reuses it when it already holds
exactly ``--customers`` customers and ``--groups`` groups; otherwise (or with ``--reseed``) it
**empties every table** of it and seeds it: give it a bench database. ``--profile FILE``
writes cProfile stats of the planning.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import random
import sqlite3
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
TAGS = ["产品持有/代发", "产品持有/按揭", "产品持有/信用卡", "产品持有/理财", "风险评估/稳健型", "偏好/免打扰"]
CHUNK = 50_000

# table → columns, in the order the rows below give them
COLUMNS: dict[str, tuple[str, ...]] = {
    "tag_group": ("group_id", "name", "order", "owner", "deleted"),
    "tag": ("tag_id", "group_id", "name", "order", "deleted"),
    "member": ("userid", "name", "department", "status"),
    "customer": ("external_userid", "name", "crm_id", "type", "gender", "updated_at"),
    "crm_customer": ("crm_id", "attributes", "updated_at"),
    "follow": ("userid", "external_userid", "created_at", "remark", "description", "state", "add_way", "status"),
    "follow_tag": ("userid", "external_userid", "tag_id", "added_at"),
    "group_chat": ("chat_id", "name", "owner", "group_type", "created_at", "member_version", "member_count",
                   "status", "updated_at"),
}
Rows = list[tuple[Any, ...]]


def batches(customers: int, groups: int, ts: Callable[[datetime], Any]) -> Iterator[tuple[str, Rows]]:
    """Every seeded row, (table, rows) a batch at a time; ``ts`` renders a timestamp for the database."""
    rng = random.Random(1)
    now = ts(datetime(2026, 11, 1, tzinfo=UTC))
    yield "tag_group", [(g, g, 0, "crm", False) for g in sorted({t.split("/")[0] for t in TAGS})]
    yield "tag", [(t, *t.split("/"), 0, False) for t in TAGS]
    managers = [f"m{i:04d}" for i in range(max(1, customers // 300))]
    yield "member", [(m, m, "", "active") for m in managers]
    base = datetime(2026, 6, 1, tzinfo=UTC)
    for start in range(0, customers, CHUNK):
        cust: Rows = []
        crm: Rows = []
        follow: Rows = []
        ftag: Rows = []
        for i in range(start, min(customers, start + CHUNK)):
            ext, crm_id, mgr = f"wm{i:08d}", f"c{i:08d}", managers[i % len(managers)]
            cust.append((ext, f"客户{i}", crm_id, 1, 0, now))
            attrs = {"payday": rng.randint(1, 28), "repayment_day": rng.randint(1, 28),
                     "birthday": f"19{rng.randint(50, 99)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
                     "card_installments": rng.randint(0, 2), "card_spend_month": rng.randint(0, 6000)}
            crm.append((crm_id, json.dumps(attrs), now))
            created = ts(base + timedelta(days=rng.randint(0, 150)))
            follow.append((mgr, ext, created, "", "", "", 0, "active"))
            for t in rng.sample(TAGS, rng.randint(0, 4)):
                ftag.append((mgr, ext, t, now))
        yield from (("customer", cust), ("crm_customer", crm), ("follow", follow), ("follow_tag", ftag))
    types = ["payroll", "elderly", "event", "regional"]
    yield "group_chat", [(f"wr{i:07d}", f"群{i}", managers[i % len(managers)], types[i % len(types)],
                          ts(base + timedelta(days=rng.randint(0, 160))), "", 0, "active", now)
                         for i in range(groups)]


def _insert_sql(table: str, columns: Sequence[str]) -> str:
    cols = ", ".join(f'"{c}"' for c in columns)
    return f'INSERT INTO "{table}"({cols}) VALUES ({", ".join("?" * len(columns))})'


def seed_sqlite(path: Path, customers: int, groups: int) -> None:
    from scrm.adapters.db import migrate

    migrate.upgrade(f"sqlite+aiosqlite:///{path}")
    con = sqlite3.connect(path)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=OFF")
    for table, rows in batches(customers, groups, lambda d: d.isoformat(sep=" ")):
        con.executemany(_insert_sql(table, COLUMNS[table]), rows)
        if table in ("follow_tag", "group_chat"):  # the end of a chunk of customers
            con.commit()
    con.commit()
    con.close()


async def _pg_counts(url: str) -> tuple[int, int]:
    from sqlalchemy import text

    from scrm.adapters.db.engine import make_engine

    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            c = await conn.scalar(text("SELECT count(*) FROM customer"))
            g = await conn.scalar(text("SELECT count(*) FROM group_chat"))
    finally:
        await engine.dispose()
    return int(c or 0), int(g or 0)


async def seed_postgres(url: str, customers: int, groups: int) -> None:
    """Empty every table and COPY the rows in (one transaction), then ANALYZE the seeded tables."""
    from bench._pg import analyze, copy_rows, truncate_all
    from scrm.adapters.db.engine import make_engine

    engine = make_engine(url)
    try:
        async with engine.begin() as conn:
            await truncate_all(conn)
            for table, rows in batches(customers, groups, lambda d: d):
                await copy_rows(conn, table, COLUMNS[table], rows)
        async with engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await analyze(conn, list(COLUMNS))
    finally:
        await engine.dispose()


async def plan(url: str, day: date, mode: str = "day") -> tuple[Counter[str], Counter[str]]:
    from handlers.sop.model import Decision, Planned
    from handlers.sop.planner import DayPlanner, SlotPlanner, slot_times
    from scrm.adapters.db.engine import make_engine, make_sessionmaker
    from scrm.kernel.clock import SystemClock
    from scrm.playbook import load_playbook

    pb = load_playbook(ROOT / "sop", ROOT / "materials", today=SystemClock().now())
    engine = make_engine(url)
    sends: Counter[str] = Counter()
    skips: Counter[str] = Counter()
    tz = ZoneInfo(pb.policy.timezone)

    def count(d: Decision) -> None:
        if isinstance(d, Planned):
            sends[f"{d.source} {d.kind}"] += 1
        else:
            skips[d.reason.split(":")[0].split(" ")[0]] += 1

    async with make_sessionmaker(engine)() as session:
        if mode == "day":
            async for d in DayPlanner(pb, day).run(session):
                count(d)
        else:
            for at in sorted(slot_times(pb)):
                async for d in SlotPlanner(pb, day, at, datetime.combine(day, at, tz)).run(session):
                    count(d)
    await engine.dispose()
    return sends, skips


def prepare(db: str | None, customers: int, groups: int, reseed: bool) -> str:
    """The database URL to plan on, seeded (or reused when it already is)."""
    from bench._pg import is_postgres
    from scrm.adapters.db import migrate
    from scrm.adapters.db.engine import display_url

    if db and "://" in db and is_postgres(db):
        migrate.upgrade(db)
        have = asyncio.run(_pg_counts(db))
        if have == (customers, groups) and not reseed:
            print(f"reusing {display_url(db)}: {customers} customers, {groups} groups already seeded")
            return db
        t = time.perf_counter()
        asyncio.run(seed_postgres(db, customers, groups))
        print(f"seeded {customers} customers, {groups} groups in {time.perf_counter() - t:.1f} s "
              f"({display_url(db)}, COPY + ANALYZE)")
        return db
    if db and db.startswith("sqlite"):
        from scrm.adapters.db.engine import sqlite_file

        file = sqlite_file(db)
        if file is None:
            raise SystemExit("--db: an SQLite file or a PostgreSQL URL")
        path = file
    else:
        path = Path(db) if db else Path(tempfile.mkdtemp()) / "bench.db"
    url = f"sqlite+aiosqlite:///{path}"
    if reseed:
        path.unlink(missing_ok=True)
    if not path.exists():
        t = time.perf_counter()
        seed_sqlite(path, customers, groups)
        print(f"seeded {customers} customers, {groups} groups in {time.perf_counter() - t:.1f} s ({path})")
    else:  # a file seeded by an older version: bring its schema (indexes) up to date first
        migrate.upgrade(url)
    return url



def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--customers", type=int, default=1_000_000)
    ap.add_argument("--groups", type=int, default=20_000)
    ap.add_argument("--day", default="2026-11-11", help="a payday+1 workday for payday 10: a busy day")
    ap.add_argument("--db", help="an SQLite file (reused when it exists) or a PostgreSQL URL "
                                 "(postgresql+asyncpg://...; emptied and seeded unless it holds exactly "
                                 "--customers/--groups); default: a fresh SQLite file in a temporary directory")
    ap.add_argument("--reseed", action="store_true", help="seed --db afresh even when it is already seeded")
    ap.add_argument("--mode", choices=["day", "slots"], default="day",
                    help="day: DayPlanner (one run, caps carried across slots); slots: a SlotPlanner per slot")
    ap.add_argument("--profile", help="write cProfile stats of the planning to this file")
    args = ap.parse_args()
    from bench._proc import peak_rss_mb, reset_peak_rss

    url = prepare(args.db, args.customers, args.groups, args.reseed)
    backend = url.split(":", 1)[0].split("+", 1)[0]
    rss_seeding = peak_rss_mb()
    reset = reset_peak_rss()
    cpu = time.process_time()
    t = time.perf_counter()
    profiler = cProfile.Profile() if args.profile else None
    if profiler:
        profiler.enable()
    sends, skips = asyncio.run(plan(url, date.fromisoformat(args.day), args.mode))
    took, cpu = time.perf_counter() - t, time.process_time() - cpu
    if profiler:
        profiler.disable()
        profiler.dump_stats(args.profile)
    rss_mb = peak_rss_mb()
    print(f"planned {args.day} ({args.mode}, {backend}): {sum(sends.values())} sends, {sum(skips.values())} skips "
          f"in {took:.1f} s ({cpu:.1f} s CPU in this process; the rest is the database server and waits); "
          f"peak RSS {rss_mb:.0f} MB"
          + (f" (planning; before it {rss_seeding:.0f} MB)" if reset else " (seeding included)"))
    for k, n in sorted(sends.items()):
        print(f"  {n:>8} {k}")
    for k, n in sorted(skips.items()):
        print(f"  {n:>8} skipped: {k}")


if __name__ == "__main__":
    main()
