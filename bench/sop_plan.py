"""Plan one day of the shipped playbook for N customers and M groups on SQLite.

    .venv/bin/python -m bench.sop_plan --customers 1000000 --groups 20000

Seeds a migrated SQLite file with raw sqlite3 (fast), then runs the real planner for every
slot of one day, counting decisions without writing (a plan). Prints seconds and peak RSS.
Goal: ≤ 60 s and < 1 GB for 1,000,000 customers / 20,000 groups (streaming, not loading all).

``--mode day`` (default) is :class:`DayPlanner`, as ``scrm sop plan`` runs: one pass over the
slots with caps carried from slot to slot. ``--mode slots`` runs one :class:`SlotPlanner` per
slot, as the scheduler's jobs do (here without the executor, so slots do not see each other).
``--db FILE`` reuses a seeded file (seeding 1,000,000 customers takes about a minute);
``--profile FILE`` writes cProfile stats of the planning.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import random
import resource
import sqlite3
import tempfile
import time
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
TAGS = ["产品持有/代发", "产品持有/按揭", "产品持有/信用卡", "产品持有/理财", "风险评估/稳健型", "偏好/免打扰"]


def seed(path: Path, customers: int, groups: int) -> None:
    from scrm.adapters.db import migrate

    migrate.upgrade(f"sqlite+aiosqlite:///{path}")
    rng = random.Random(1)
    now = datetime(2026, 11, 1, tzinfo=UTC).isoformat(sep=" ")
    con = sqlite3.connect(path)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=OFF")
    for g in {t.split("/")[0] for t in TAGS}:
        con.execute("INSERT INTO tag_group(group_id, name, \"order\", owner, deleted) VALUES (?,?,0,'crm',0)", (g, g))
    for t in TAGS:
        g, n = t.split("/")
        con.execute("INSERT INTO tag(tag_id, group_id, name, \"order\", deleted) VALUES (?,?,?,0,0)", (t, g, n))
    managers = [f"m{i:04d}" for i in range(max(1, customers // 300))]
    con.executemany("INSERT INTO member(userid, name, department, status) VALUES (?,?,'', 'active')",
                    [(m, m) for m in managers])
    base = datetime(2026, 6, 1, tzinfo=UTC)
    chunk = 50_000
    for start in range(0, customers, chunk):
        cust, crm, follow, ftag = [], [], [], []
        for i in range(start, min(customers, start + chunk)):
            ext, crm_id, mgr = f"wm{i:08d}", f"c{i:08d}", managers[i % len(managers)]
            cust.append((ext, f"客户{i}", crm_id, now))
            attrs = {"payday": rng.randint(1, 28), "repayment_day": rng.randint(1, 28),
                     "birthday": f"19{rng.randint(50, 99)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
                     "card_installments": rng.randint(0, 2), "card_spend_month": rng.randint(0, 6000)}
            crm.append((crm_id, json.dumps(attrs), now))
            created = (base + timedelta(days=rng.randint(0, 150))).isoformat(sep=" ")
            follow.append((mgr, ext, created))
            for t in rng.sample(TAGS, rng.randint(0, 4)):
                ftag.append((mgr, ext, t, now))
        con.executemany("INSERT INTO customer(external_userid, name, crm_id, type, gender, updated_at) "
                        "VALUES (?,?,?,1,0,?)", cust)
        con.executemany("INSERT INTO crm_customer(crm_id, attributes, updated_at) VALUES (?,?,?)", crm)
        con.executemany("INSERT INTO follow(userid, external_userid, created_at, remark, description, state, "
                        "add_way, status) VALUES (?,?,?,'','','',0,'active')", follow)
        con.executemany("INSERT INTO follow_tag(userid, external_userid, tag_id, added_at) VALUES (?,?,?,?)", ftag)
        con.commit()
    types = ["payroll", "elderly", "flash_sale", "regional"]
    rows = [(f"wr{i:07d}", f"群{i}", managers[i % len(managers)], types[i % len(types)],
             (base + timedelta(days=rng.randint(0, 160))).isoformat(sep=" "), now) for i in range(groups)]
    con.executemany("INSERT INTO group_chat(chat_id, name, owner, group_type, created_at, member_version, "
                    "member_count, status, updated_at) VALUES (?,?,?,?,?,'',0,'active',?)", rows)
    con.commit()
    con.close()


async def plan(path: Path, day: date, mode: str = "day") -> tuple[Counter[str], Counter[str]]:
    from handlers.sop.model import Decision, Planned
    from handlers.sop.planner import DayPlanner, SlotPlanner, slot_times
    from scrm.adapters.db.engine import make_engine, make_sessionmaker
    from scrm.kernel.clock import SystemClock
    from scrm.playbook import load_playbook

    pb = load_playbook(ROOT / "sop", ROOT / "materials", today=SystemClock().now())
    engine = make_engine(f"sqlite+aiosqlite:///{path}")
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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--customers", type=int, default=1_000_000)
    ap.add_argument("--groups", type=int, default=20_000)
    ap.add_argument("--day", default="2026-11-11", help="a payday+1 workday for payday 10: a busy day")
    ap.add_argument("--db", help="reuse a seeded database file")
    ap.add_argument("--mode", choices=["day", "slots"], default="day",
                    help="day: DayPlanner (one run, caps carried across slots); slots: a SlotPlanner per slot")
    ap.add_argument("--profile", help="write cProfile stats of the planning to this file")
    args = ap.parse_args()
    path = Path(args.db) if args.db else Path(tempfile.mkdtemp()) / "bench.db"
    if not path.exists():
        t = time.perf_counter()
        seed(path, args.customers, args.groups)
        print(f"seeded {args.customers} customers, {args.groups} groups in {time.perf_counter() - t:.1f} s ({path})")
    else:  # a file seeded by an older version: bring its schema (indexes) up to date first
        from scrm.adapters.db import migrate

        migrate.upgrade(f"sqlite+aiosqlite:///{path}")
    t = time.perf_counter()
    profiler = cProfile.Profile() if args.profile else None
    if profiler:
        profiler.enable()
    sends, skips = asyncio.run(plan(path, date.fromisoformat(args.day), args.mode))
    took = time.perf_counter() - t
    if profiler:
        profiler.disable()
        profiler.dump_stats(args.profile)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"planned {args.day} ({args.mode}): {sum(sends.values())} sends, {sum(skips.values())} skips "
          f"in {took:.1f} s; peak RSS {rss_mb:.0f} MB")
    for k, n in sorted(sends.items()):
        print(f"  {n:>8} {k}")
    for k, n in sorted(skips.items()):
        print(f"  {n:>8} skipped: {k}")


if __name__ == "__main__":
    main()
