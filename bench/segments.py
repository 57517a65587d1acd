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
(the worst night, once after installing); the second, a day later, finds a few changes.

Then the membership levels (``handlers.membership.nightly``, ``[membership] chunk`` members a
transaction, the shipped ``sop/membership.yaml``): every customer is a member with two earnings
(one in 2025, one in 2026) and a level spread as a pyramid (new 40 %, ordinary 35 %, core 20 %,
seed 5 %), a quarter of those above ``new`` short of their level's ``keep``. Two membership
nights: 2027-01-01 04:00, the worst of the year — every member's 2025 points lapse (end of the
following year) and the quarterly review moves the short ones down a level — and the next night,
with nothing due and no review (the cost of going over the members at all).

Prints each phase's wall time and rate, this process's CPU time, the changes, and the peak RSS so
far; then a whole night, both jobs as the service runs them one after the other (lifecycle at
03:30, membership at 04:00): an ordinary night (the lifecycle's next night and the membership's
quiet one) and the year's end (the same lifecycle night and the new-year lapse and review). Goal
(issue 16): a night ≤ 120 s and < 1 GB for 1,000,000 on SQLite.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, date, datetime, timedelta
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


async def _chunked(url: str, now: datetime, run: Callable[[Any, Any, str], Awaitable[Any]],
                   count: Callable[[Any], Mapping[str, int]]) -> tuple[float, float, Counter[str]]:
    """A nightly job as the service chains it: ``run(session, inbox, cursor)`` chunk after chunk,
    one transaction each, until it returns no cursor; (wall seconds, this process's CPU seconds,
    the sum of ``count`` over the chunks: a chunk is dropped once counted, so the bench's peak
    RSS is the job's). On a shared host the CPU time is the steadier figure: SQLite runs in
    this process, so it counts everything but PostgreSQL's own work and the wait for a core."""
    from sqlalchemy.ext.asyncio import async_sessionmaker

    import scrm.main  # noqa: F401  (every feature's tables, for the inbox's event kinds)
    from scrm.adapters.db.engine import make_engine
    from scrm.kernel.clock import FakeClock
    from scrm.kernel.config import Settings
    from scrm.kernel.inbox import Inbox

    engine = make_engine(url)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    inbox = Inbox(engine, sessions, Settings().inbox, FakeClock(now))
    totals: Counter[str] = Counter()
    started, cpu = time.perf_counter(), time.process_time()
    try:
        cursor: str | None = ""
        while cursor is not None:
            async with sessions() as session, session.begin():
                done = await run(session, inbox, cursor)
            totals.update(count(done))
            cursor = done.cursor
    finally:
        await engine.dispose()
    return time.perf_counter() - started, time.process_time() - cpu, totals


async def night(url: str, now: datetime, chunk: int) -> tuple[float, float, int, int, int]:
    """One nightly run of segments and stages; returns (wall seconds, CPU seconds, customers, CRM
    records written, stage changes)."""
    from handlers.lifecycle.nightly import run_chunk
    from handlers.lifecycle.rules import load_lifecycle, load_segmentation

    seg, lc = load_segmentation(ROOT / "sop"), load_lifecycle(ROOT / "sop")
    today = now.astimezone(ZONE).date()
    wall, cpu, n = await _chunked(url, now, lambda session, inbox, cursor: run_chunk(
        session, inbox, seg, lc, today=today, now=now, tz=ZONE, cursor=cursor, limit=chunk),
        lambda c: {"scanned": c.scanned, "mirrored": c.mirrored, "entered": len(c.entered)})
    return wall, cpu, n["scanned"], n["mirrored"], n["entered"]

#: The membership nights: the first of the year (yearly lapse and quarterly review) and the next.
NEW_YEAR = datetime(2026, 12, 31, 20, 0, tzinfo=UTC)  # 2027-01-01 04:00 in Asia/Shanghai
LAST_REVIEW = date(2026, 10, 1)
#: Level by ``i % 20``: a pyramid of new 8/20, ordinary 7/20, core 4/20, seed 1/20.
PYRAMID = (0,) * 8 + (1,) * 7 + (2,) * 4 + (3,)


def _member_rows(lo: int, hi: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Accounts and their ledger entries: a 2025 earning whose points lapse on 2027-01-01 and
    whose growth is outside the review's window, and a 2026 earning whose growth is what the
    review weighs (a quarter of the members above ``new`` get less than their level's ``keep``)."""
    from handlers.membership.models import EARN, GROWTH, POINTS

    # (name, growth to reach, keep) of the shipped sop/membership.yaml
    levels = (("new", 0, 0), ("ordinary", 100, 50), ("core", 1000, 600), ("seed", 3000, 2000))
    lapse_at = datetime(2026, 12, 31, 16, 0, tzinfo=UTC)  # 2027-01-01 00:00 local: end of 2026
    accounts, entries = [], []
    for i in range(lo, hi):
        ext = f"wm{i:08d}"
        name, reach, keep = levels[PYRAMID[i % 20]]
        old_at = datetime(2025, 1, 1, 2, tzinfo=UTC) + timedelta(days=i % 360, minutes=i % 600)
        new_at = datetime(2026, 1, 15, 2, tzinfo=UTC) + timedelta(days=i % 300, minutes=i % 600)
        short = name != "new" and (i // 20) % 4 == 0
        old_growth = reach or 20
        new_growth = keep // 2 if short else keep + 1 + i % 97 if name != "new" else 1 + i % 59
        old_points, new_points = 100 + i % 50, 50 + i % 30
        for source, at, points, growth, expires in (
                (f"crm:b{i}-2025", old_at, old_points, old_growth, lapse_at),
                (f"crm:b{i}-2026", new_at, new_points, new_growth, datetime(2027, 12, 31, 16, tzinfo=UTC))):
            day = at.astimezone(ZONE).date()
            base = {"external_userid": ext, "reason": EARN, "behaviour": "wealth_purchase", "source": source,
                    "at": at, "day": day}
            entries.append({**base, "kind": POINTS, "amount": points, "expires_at": expires})
            entries.append({**base, "kind": GROWTH, "amount": growth, "expires_at": None})
        accounts.append({"external_userid": ext, "points": old_points + new_points, "reserved": 0,
                         "growth": old_growth + new_growth, "level": name,
                         "level_since": old_at.astimezone(ZONE).date(), "reviewed_on": LAST_REVIEW,
                         "lapsed_until": NEW_YEAR - timedelta(days=1), "updated_at": new_at})
    return accounts, entries


def _sqlite_value(value: object) -> object:
    """A value as SQLAlchemy stores it in SQLite: UTC datetimes naive with microseconds, dates ISO."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
    if isinstance(value, date):
        return value.isoformat()
    return value


async def seed_members(url: str, n: int) -> tuple[float, int, int]:
    """Every customer a member (see :func:`_member_rows`); returns (seconds, points that lapse
    on the first night, members short of their level's keep)."""
    from handlers.membership.models import MembershipAccount, MembershipEntry
    from scrm.adapters.db.engine import make_engine, table_of

    started = time.perf_counter()
    engine = make_engine(url)
    postgres = is_postgres(url)
    lapsing = short = 0
    try:
        for lo in range(0, n, SEED_BATCH):
            accounts, entries = _member_rows(lo, min(n, lo + SEED_BATCH))
            lapsing += sum(e["amount"] for e in entries if e["kind"] == "points" and e["source"].endswith("2025"))
            short += sum(1 for a, g in zip(accounts, entries[3::4], strict=True)
                         if a["level"] != "new" and g["amount"] < dict(ordinary=50, core=600, seed=2000)[a["level"]])
            async with engine.begin() as conn:
                for model, rows in ((MembershipAccount, accounts), (MembershipEntry, entries)):
                    columns = list(rows[0])
                    if postgres:
                        await copy_rows(conn, table_of(model).name, columns, [tuple(r.values()) for r in rows])
                    else:  # the driver's executemany with SQLite's own text forms: 4,000,000 rows in ~1 min
                        await conn.exec_driver_sql(
                            f"INSERT INTO {table_of(model).name} ({', '.join(columns)}) "
                            f"VALUES ({', '.join('?' * len(columns))})",
                            [tuple(_sqlite_value(v) for v in r.values()) for r in rows])
        if postgres:
            async with engine.connect() as conn:
                await (await conn.execution_options(isolation_level="AUTOCOMMIT")).exec_driver_sql("ANALYZE")
    finally:
        await engine.dispose()
    return time.perf_counter() - started, lapsing, short


async def membership_night(url: str, now: datetime, chunk: int) -> tuple[float, float, int, int, int]:
    """One membership nightly run as the service chains it (chunk after chunk, one transaction
    each, level changes added to the inbox); returns (wall seconds, CPU seconds, members, points
    lapsed, levels moved down)."""
    from handlers.crm.api import EVENT_KINDS
    from handlers.membership.nightly import run_chunk
    from handlers.membership.rules import load_membership

    rules = load_membership(ROOT / "sop", EVENT_KINDS)
    day = now.astimezone(ZONE).date()
    wall, cpu, n = await _chunked(url, now, lambda session, inbox, cursor: run_chunk(
        session, inbox, rules, day=day, now=now, tz=ZONE, cursor=cursor, limit=chunk),
        lambda c: {"scanned": c.scanned, "lapsed": c.lapsed, "downs": len(c.changes)})
    return wall, cpu, n["scanned"], n["lapsed"], n["downs"]


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--db", help="a PostgreSQL bench database (emptied); default a fresh SQLite file")
    parser.add_argument("--chunk", type=int, default=2000)
    parser.add_argument("--nights", type=int, choices=(1, 2), default=2, help="1: the first night only")
    parser.add_argument("--membership", choices=("yes", "no", "only"), default="yes",
                        help="the membership nights after the lifecycle ones (only: no customers, no lifecycle)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        url = await fresh_database(args.db, Path(tmp))
        nights = (("first night", ANCHOR), ("next night", ANCHOR + timedelta(days=1)))[:args.nights]
        if args.membership != "only":  # the membership nightly reads its own tables only
            seeded = await seed(url, args.customers)
            print(f"{url.split('://')[0]}: {args.customers:,} customers seeded in {seeded:.1f} s "
                  f"(peak RSS {_peak_mb():.0f} MB)")
        walls: dict[str, float] = {}
        for label, now in nights if args.membership != "only" else ():
            secs, cpu, scanned, mirrored, entered = await night(url, now, args.chunk)
            walls[label] = secs
            print(f"{label}: {scanned:,} customers in {secs:.1f} s ({scanned / secs:,.0f}/s; CPU {cpu:.1f} s), "
                  f"{mirrored:,} CRM records written, {entered:,} stage changes; peak RSS {_peak_mb():.0f} MB")
        if args.membership == "no":
            return 0
        seeded, lapsing, short = await seed_members(url, args.customers)
        print(f"membership: {args.customers:,} members seeded in {seeded:.1f} s "
              f"({lapsing:,} points lapse on 2027-01-01, {short:,} short of their level's keep)")
        for label, now in (("new-year night", NEW_YEAR), ("next night", NEW_YEAR + timedelta(days=1)))[:args.nights]:
            secs, cpu, scanned, lapsed, downs = await membership_night(url, now, args.chunk)
            walls[f"membership {label}"] = secs
            print(f"membership {label}: {scanned:,} members in {secs:.1f} s ({scanned / secs:,.0f}/s; "
                  f"CPU {cpu:.1f} s), {lapsed:,} points lapsed, {downs:,} levels down; "
                  f"peak RSS {_peak_mb():.0f} MB")
        lifecycle = walls.get("next night")
        for label, member_night in (("an ordinary night", "membership next night"),
                                    ("the year's end", "membership new-year night")):
            if lifecycle is not None and member_night in walls:
                total = lifecycle + walls[member_night]
                print(f"{label}: lifecycle {lifecycle:.1f} s + membership {walls[member_night]:.1f} s = {total:.1f} s "
                      f"(goal ≤ 120 s: {'met' if total <= 120 else 'MISSED'}); peak RSS {_peak_mb():.0f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
