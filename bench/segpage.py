"""The 客群与会员 page on 1,000,000 customers (PostgreSQL): the nightly snapshot and a view's reads.

    .venv/bin/python -m bench.segpage [--customers 1000000] [--db URL] [--reuse] [--rounds 20]

Seeds (``INSERT … SELECT generate_series``, choices by ``hashint4``) N customers over 300
managers in 3 branches × 2 sub-branches × 3 teams: an active relation each (a second, later one
for 10 %, an earlier lost one for 3 %, none for 1 %), a ``customer_segment`` row (a staged
customer in 0–2 of the shipped segments; 2 % not staged yet), a membership account (new 40 %,
ordinary 35 %, core 20 %, seed 5 %) and N/20 level changes over the 4 months before 2026-12-01.
Then times :func:`handlers.console.segstore.rebuild` (the ``console.segments`` job, goal: well
inside the night) and, ``--rounds`` times each, what a view of the whole bank, a sub-branch (50
managers) and one manager reads: the scope (:func:`handlers.console.scope.resolve`), the
snapshot's rows (:func:`segstore.read`) and the matrix and membership views (goal, issue 14: the
page's p95 < 300 ms). Prints wall time, this process's CPU, the PostgreSQL backend's CPU (its own
process, so other people's queries are not in it) and the statements per view.

The database (default ``segpage_bench``) is created when missing and emptied when seeded;
``--reuse`` keeps one seeded with the same N.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncSession

from bench._million import ensure_database
from bench._pg import bench_postgres_url, database_comment, truncate_all
from tests.support.processes import proc_cpu_s

NOW = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
TZ = ZoneInfo("Asia/Shanghai")
MANAGERS = 300
REPO = Path(__file__).resolve().parents[1]


def _h(expr: str, salt: int) -> str:
    """A stable pseudo-random 0..999 from ``expr`` (so nothing follows the numbering)."""
    return f"((hashint4(({expr}) + {salt} * 16777259)::bigint % 1000 + 1000) % 1000)"


def statements(n: int) -> list[tuple[str, str]]:
    i = "g.i"
    manager = f"'m' || lpad(({_h(i, 1)} * {MANAGERS} / 1000)::text, 5, '0')"
    second = f"'m' || lpad((({_h(i, 1)} * {MANAGERS} / 1000 + 1) % {MANAGERS})::text, 5, '0')"
    third = f"'m' || lpad((({_h(i, 1)} * {MANAGERS} / 1000 + 2) % {MANAGERS})::text, 5, '0')"
    cust = "'wm' || lpad(g.i::text, 8, '0')"
    segs = (f"CASE WHEN {_h(i, 3)} < 350 THEN '[]' WHEN {_h(i, 3)} < 600 THEN '[\"payroll\"]' "
            f"WHEN {_h(i, 3)} < 700 THEN '[\"silver\"]' WHEN {_h(i, 3)} < 800 THEN '[\"new\"]' "
            f"WHEN {_h(i, 3)} < 850 THEN '[\"payroll\", \"silver\"]' WHEN {_h(i, 3)} < 900 THEN '[\"car_owner\"]' "
            f"WHEN {_h(i, 3)} < 950 THEN '[\"merchant\"]' ELSE '[\"cross_border\"]' END")
    stage = (f"CASE WHEN {_h(i, 4)} < 20 THEN NULL WHEN {_h(i, 4)} < 150 THEN 'new' WHEN {_h(i, 4)} < 300 "
             f"THEN 'activating' WHEN {_h(i, 4)} < 700 THEN 'active' WHEN {_h(i, 4)} < 800 THEN 'slipping' "
             f"WHEN {_h(i, 4)} < 950 THEN 'silent' ELSE 'lost' END")
    level = (f"CASE WHEN {_h(i, 5)} < 400 THEN 'new' WHEN {_h(i, 5)} < 750 THEN 'ordinary' "
             f"WHEN {_h(i, 5)} < 950 THEN 'core' ELSE 'seed' END")
    series = f"FROM generate_series(0, {n - 1}) AS g(i)"
    teams = ("SELECT 'm' || lpad(k::text, 5, '0'), '经理' || k, '分行' || (k / 100) || '/支行' || (k / 50 % 2) "
             f"|| '/团队' || (k / 17 % 3), NULL, 'active' FROM generate_series(0, {MANAGERS - 1}) AS k")
    return [
        ("member", f"INSERT INTO member (userid, name, department, team_lead, status) {teams}"),
        ("follow", "INSERT INTO follow (userid, external_userid, remark, description, state, add_way, created_at, "
                   f"status) SELECT {manager}, {cust}, '', '', '', 0, "
                   f"TIMESTAMPTZ '2026-08-01 00:00+00' + ({_h(i, 2)} || ' hours')::interval, 'active' "
                   f"{series} WHERE {_h(i, 6)} >= 10"),
        ("follow (second, later)", "INSERT INTO follow (userid, external_userid, remark, description, state, add_way, "
                   f"created_at, status) SELECT {second}, {cust}, '', '', '', 0, TIMESTAMPTZ '2026-11-01 00:00+00', "
                   f"'active' {series} WHERE {_h(i, 7)} < 100"),
        ("follow (lost, earlier)", "INSERT INTO follow (userid, external_userid, remark, description, state, "
                   f"add_way, created_at, status) SELECT {third}, {cust}, '', '', '', 0, "
                   f"TIMESTAMPTZ '2026-01-01 00:00+00', 'lost' {series} WHERE {_h(i, 8)} < 30"),
        ("customer_segment", "INSERT INTO customer_segment (external_userid, segments, score, stage, computed_at) "
                             f"SELECT {cust}, ({segs})::json, 0, {stage}, TIMESTAMPTZ '2026-11-30 19:30+00' {series}"),
        ("membership_account", "INSERT INTO membership_account (external_userid, points, growth, reserved, level, "
                               f"level_since, updated_at) SELECT {cust}, {_h(i, 9)} * 7, {_h(i, 10)} * 3, "
                               f"CASE WHEN {_h(i, 11)} < 10 THEN 50 ELSE 0 END, {level}, DATE '2026-01-01', "
                               f"TIMESTAMPTZ '2026-11-30 20:00+00' {series}"),
        ("membership_level_change", "INSERT INTO membership_level_change (external_userid, previous, level, "
                                    f"direction, cause, at) SELECT {cust}, 'new', 'ordinary', CASE WHEN {_h(i, 12)} "
                                    "< 700 THEN 'up' ELSE 'down' END, 'bench:' || g.i, TIMESTAMPTZ "
                                    f"'2026-08-01 00:00+00' + ({_h(i, 13)} * 3 || ' hours')::interval "
                                    f"{series} WHERE {_h(i, 14)} < 50"),
    ]


async def seed(url: str, n: int) -> float:
    from scrm.adapters.db import migrate
    from scrm.adapters.db.engine import make_engine

    started = time.perf_counter()
    await ensure_database(url)
    await migrate.upgrade_async(url, "heads")
    engine = make_engine(url)
    try:
        async with engine.begin() as conn:
            await truncate_all(conn)
            for name, sql in statements(n):
                t0 = time.perf_counter()
                await conn.execute(text(sql))
                print(f"  seeded {name}: {time.perf_counter() - t0:.1f} s")
            await conn.execute(text(f"COMMENT ON DATABASE \"{engine.url.database}\" IS 'bench.segpage customers={n}'"))
        async with engine.connect() as conn:
            await (await conn.execution_options(isolation_level="AUTOCOMMIT")).exec_driver_sql("VACUUM ANALYZE")
    finally:
        await engine.dispose()
    return time.perf_counter() - started


async def held(url: str, n: int) -> bool:
    try:
        return await database_comment(url) == f"bench.segpage customers={n}"
    except Exception:  # no such database yet: seed it
        return False


class Meter:
    """Wall, this process's CPU, the PostgreSQL backend's CPU and the statements of a stretch."""

    def __init__(self, backend: int) -> None:
        self.backend, self.statements = backend, 0

    def count(self, *_: Any) -> None:
        self.statements += 1

    def start(self) -> None:
        self.t0, self.c0, self.p0, self.s0 = (time.perf_counter(), time.process_time(), proc_cpu_s(self.backend),
                                              self.statements)

    def stop(self) -> tuple[float, float, float | None, int]:
        pg = proc_cpu_s(self.backend)
        return (time.perf_counter() - self.t0, time.process_time() - self.c0,
                None if pg is None or self.p0 is None else pg - self.p0, self.statements - self.s0)


async def measure(url: str, rounds: int) -> None:
    from handlers.console import segstore
    from handlers.console.access import Grant, Role
    from handlers.console.scope import resolve
    from handlers.console.segpage import matrix_view, membership_view
    from handlers.crm.api import EVENT_KINDS
    from handlers.lifecycle.api import frame, load_lifecycle, load_segmentation
    from handlers.membership.api import current_membership
    from scrm.adapters.db.engine import make_engine
    from scrm.playbook.loader import load_playbook

    sop = REPO / "sop"
    pb = load_playbook(sop, REPO / "materials", today=NOW.astimezone(TZ).date())
    seg, lc, rules = load_segmentation(sop), load_lifecycle(sop), current_membership(sop, EVENT_KINDS)
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            backend = int(await conn.scalar(text("SELECT pg_backend_pid()")) or 0)
            await conn.commit()  # so the session below owns its transactions (commit and rollback)
            meter = Meter(backend)
            event.listen(conn.sync_connection, "before_cursor_execute", meter.count)
            db = AsyncSession(bind=conn)
            meter.start()
            await segstore.rebuild(db, NOW.astimezone(TZ).date(), NOW, TZ)
            await db.commit()
            wall, cpu, pg, n = meter.stop()
            print(f"rebuild (the nightly job): {wall:.1f} s wall, {cpu:.2f} s bench CPU, "
                  f"{pg if pg is None else round(pg, 1)} s PostgreSQL CPU, {n} statements")
            admin = Grant("", Role.OPS_ADMIN)
            for label, kwargs in (("whole bank", {}), ("sub-branch", {"dept": "分行1/支行0"}),
                                  ("manager", {"manager": "m00150"})):
                walls: list[float] = []
                cpus: list[float] = []
                pgs: list[float] = []
                for _ in range(rounds):
                    meter.start()
                    scope = await resolve(db, admin, **kwargs)
                    run = await segstore.latest(db)
                    assert run is not None
                    fig = await segstore.read(db, run, scope)
                    matrix_view(frame(seg, lc, pb), dict(fig.cells))
                    membership_view(fig, rules, {})
                    await db.rollback()
                    wall, cpu, pg, n = meter.stop()
                    walls.append(wall * 1000)
                    cpus.append(cpu * 1000)
                    pgs.append((pg or 0.0) * 1000)
                p95 = statistics.quantiles(walls, n=20)[-1] if len(walls) > 1 else walls[0]
                print(f"view of {label} ({len(scope.members)} managers): p50 {statistics.median(walls):.1f} ms, "
                      f"p95 {p95:.1f} ms wall; per view {statistics.mean(cpus):.1f} ms bench CPU, "
                      f"{statistics.mean(pgs):.1f} ms PostgreSQL CPU, {n} statements")
    finally:
        await engine.dispose()


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--db", default=bench_postgres_url("segpage_bench"))
    parser.add_argument("--reuse", action="store_true", help="keep a database seeded with --customers")
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args(argv)
    if not (args.reuse and await held(args.db, args.customers)):
        print(f"seeding {args.customers:,} customers into {args.db}")
        print(f"seeded in {await seed(args.db, args.customers):.0f} s")
    await measure(args.db, args.rounds)
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
