"""Tag sync bench: N customers, ~3 CRM tag changes each, against the sandbox on loopback.

    .venv/bin/python -m bench.tag_sync --customers 100000 --limit 6000
    .venv/bin/python -m bench.tag_sync --db postgresql+asyncpg://postgres@127.0.0.1:5432/scrm_bench
    .venv/bin/python -m bench.tag_sync --customers 1000000 --plan-only [--db URL]

Two processes, both on 127.0.0.1 and the real clock:

* the **sandbox** (child): the WeCom emulator seeded with N customers of one manager, each
  tagged ``客户等级/V1`` + ``兴趣/理财``; ``externalcontact/mark_tag`` limited to ``--limit`` calls
  per clock minute (over it: 45009, counted by a middleware);
* the **service side** (this process): a fresh, migrated SQLite database (or ``--db URL``, a
  PostgreSQL database that is migrated and **emptied** before each run: give it a bench
  database; seeded with ``COPY`` and then analyzed) seeded with the same
  relations, their tags and CRM rows asking for ``V2`` + ``代发`` (V1 → V2 and one product:
  three tag changes, one ``mark_tag`` each), a ``WeComClient`` configured with the same
  ``api_limits_per_minute`` for mark_tag, and the outbox with the service's default settings.

Timed from the start: the sync runs (``handlers.crm.runner``: chunk by chunk, each chunk's calls
committed to the outbox, never more than two minutes of calls ahead of the sending, see
``handlers.crm.backlog``) while the outbox worker already sends, as ``scrm sync tags`` or the
nightly job and the outbox worker do in the service; the run ends at the last ``sent_at``. Prints the wall time,
its ratio to the limit-bound minimum (calls / limit per second; goal <= 1.1), the 45009
count (goal 0) and this process's RSS after seeding, after planning, at the end, and its peak
(goal: flat, < 300 MB). The sandbox holds the whole emulated tenant, so it runs apart and its
memory is printed separately.

WeCom's latency (``bench/_latency.py``): by default the bench runs twice, with a sandbox that
answers at once and with one whose every answer waits ``--latency`` ± ``--jitter`` ms (150 ± 50),
each with a freshly seeded sandbox and database, and prints them side by side. With latency the
outbox needs ``concurrency`` calls in flight per ``latency`` seconds to keep up with the limit.

``--plan-only``: the service's own cost of a full sync at a size whose calls would take hours
at WeCom's limit (1,000,000 relations are 1,000,000 ``mark_tag`` calls: 100 minutes at 10,000 a
minute, 167 at 6,000). Nothing is sent: the sandbox holds only the tag catalog (no customer;
WeCom's latency does not matter, one run), the database is seeded with N relations as above,
and the sync runs twice over it, timed apart: a dry run (the chunked scan and diff alone, as
``scrm sync tags --dry-run``) and the real run (scan, diff, and each chunk's ``mark_tag`` calls
queued in the outbox with the mirror and sync state, one transaction per chunk). The real run
queues all N calls without the backlog cap (no worker drains the queue, so the cap would wait
forever): the outbox table grows to N pending rows, which makes the queueing a little dearer
than in the service, where about two minutes of calls wait at a time. Prints relations per
second of both runs beside the limit's calls per second, and the RSS. ``--max-seconds S``
stops the real run at the first chunk boundary after S seconds (it reports how far it got and
the rate per 100,000 relations); ``--profile FILE`` writes cProfile stats of the real run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import io
import json
import multiprocessing as mp
import os
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Event as MpEvent
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # also runnable as `python bench/tag_sync.py`
    sys.path.insert(0, str(ROOT))


from bench._latency import Latency, add_latency_args, latency_runs, side_by_side, yes_no
from bench._pg import fresh_database
from bench._proc import peak_rss_mb, reset_peak_rss
from bench._sandbox import serving
from scrm.kernel.clock import SystemClock
from scrm.kernel.progress import Progress
from scrm.playbook.models import TagsFile
from scrm.sandbox import SANDBOX_AGENT_ID, SANDBOX_CORP_ID, SANDBOX_SECRET
from tests.support.processes import until_stopped

HOST = "127.0.0.1"
API = "externalcontact/mark_tag"
SEED_CHUNK = 2000
TAGS = TagsFile.model_validate({"groups": {
    "客户等级": {"owner": "crm", "from": "crm.tier", "map": {"V1": "V1", "V2": "V2", "V3": "V3"}},
    "产品持有": {"owner": "crm", "from": "crm.products", "map": {"payroll": "代发", "wealth": "理财"}},
    "兴趣": {"owner": "manager", "tags": ["理财"]},
}}).groups
CATALOG = (("客户等级", ("V1", "V2", "V3")), ("产品持有", ("代发", "理财")), ("兴趣", ("理财",)))
START_TAGS = ("客户等级/V1", "兴趣/理财")


def _ext(i: int) -> str:
    return f"wmbench{i:07d}"


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


# --------------------------------------------------------------------------- the sandbox (child)


def sandbox_main(n: int, limit: int, latency: dict[str, Any], conn: Connection, stop: MpEvent) -> None:
    asyncio.run(_serve_sandbox(n, limit, latency, conn, stop))


async def _serve_sandbox(n: int, limit: int, latency: dict[str, Any], conn: Connection, stop: MpEvent) -> None:
    from scrm.sandbox.server import SandboxServer
    from scrm.sandbox.state import SandboxState

    state = SandboxState()
    state.add_member("m1", "经理")
    ids: dict[str, str] = {}
    for gname, tags in CATALOG:
        group = state.new_tag_group(gname, 0)
        for t in tags:
            ids[f"{gname}/{t}"] = state.new_tag(group, t, 0).id
    start = [ids[t] for t in START_TAGS]
    for i in range(n):
        state.add_customer(f"c{i}", external_userid=_ext(i))
        state.add_follow("m1", _ext(i), 0, tag_ids=start)
    server = SandboxServer(state, SystemClock(), per_api_overrides={API: limit}, **latency)
    async with serving(server, HOST) as served:
        conn.send(("ready", served.port, ids))
        await until_stopped(stop)
    calls = state.received_calls(API)
    done = sum(1 for i in range(n) if set(state.require_follow("m1", _ext(i)).tag_ids)
               == {ids["客户等级/V2"], ids["产品持有/代发"], ids["兴趣/理财"]})
    conn.send({"calls": len(calls), "rejected_45009": served.rejected_45009, "relations_right": done,
               "peak_mb": peak_rss_mb(), "delayed": server.latency.delayed, "delay_s": server.latency.total_s})


# --------------------------------------------------------------------------- the service side (this process)


SEED_COLUMNS: dict[str, tuple[str, ...]] = {
    "follow": ("userid", "external_userid", "created_at", "remark", "description", "state", "add_way", "status"),
    "follow_tag": ("userid", "external_userid", "tag_id", "added_at"),
    "crm_customer": ("crm_id", "attributes", "updated_at"),
    "binding": ("crm_id", "external_userid", "source", "bound_at"),
}


def _seed_rows(lo: int, hi: int, ids: dict[str, str], now: datetime) -> dict[str, list[tuple[Any, ...]]]:
    start = [ids[t] for t in START_TAGS]
    rows: dict[str, list[tuple[Any, ...]]] = {t: [] for t in SEED_COLUMNS}
    for i in range(lo, hi):
        ext = _ext(i)
        rows["follow"].append(("m1", ext, now, "", "", "", 0, "active"))
        rows["follow_tag"] += [("m1", ext, t, now) for t in start]
        rows["crm_customer"].append((f"B{i}", {"tier": "V2", "products": ["payroll"]}, now))
        rows["binding"].append((f"B{i}", ext, "direct", now))
    return rows


async def _seed(engine: Any, sessions: Any, n: int, ids: dict[str, str]) -> None:
    """N relations (follow, two tags, CRM row, binding); in chunks, so memory stays flat. On
    PostgreSQL through COPY (executemany of 5,000,000 rows takes long there) and then ANALYZE."""
    from bench._pg import analyze, copy_rows
    from handlers.contacts.models import Follow
    from handlers.crm.models import Binding, CrmCustomer
    from handlers.tags.models import FollowTag
    from scrm.adapters.db.engine import table_of

    tables = {m.__tablename__: table_of(m) for m in (Follow, FollowTag, CrmCustomer, Binding)}
    now = SystemClock().now()
    postgres = engine.dialect.name == "postgresql"
    chunk = 10 * SEED_CHUNK if postgres else SEED_CHUNK
    for lo in range(0, n, chunk):
        rows = _seed_rows(lo, min(n, lo + chunk), ids, now)
        if postgres:
            async with engine.begin() as conn:
                for table, recs in rows.items():
                    if table == "crm_customer":  # a json column: COPY takes its text
                        recs = [(c, json.dumps(a), u) for c, a, u in recs]
                    await copy_rows(conn, table, SEED_COLUMNS[table], recs)
            continue
        async with sessions() as s, s.begin():
            for table, recs in rows.items():
                cols = SEED_COLUMNS[table]
                await s.execute(tables[table].insert(), [dict(zip(cols, r, strict=True)) for r in recs])
    if postgres:
        async with engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await analyze(conn, list(SEED_COLUMNS))


async def _unfinished(sessions: Any) -> int:
    from sqlalchemy import func, select

    from scrm.kernel.models import OutboxAction

    async with sessions() as s:  # the (status, ...) index answers this without reading rows
        return int(await s.scalar(select(func.count()).select_from(OutboxAction)
                                  .where(OutboxAction.status.in_(("pending", "sending")))) or 0)


async def _last_sent(sessions: Any) -> datetime:
    from sqlalchemy import func, select

    from scrm.kernel.models import OutboxAction

    async with sessions() as s:
        last: datetime | None = await s.scalar(select(func.max(OutboxAction.sent_at)))
    assert last is not None
    return last if last.tzinfo is not None else last.replace(tzinfo=UTC)


async def run_service(n: int, limit: int, chunk: int, port: int, ids: dict[str, str], db: str | None = None,
                      plan_only: bool = False, profile: str | None = None,
                      max_s: float | None = None) -> dict[str, Any]:
    from handlers.crm.backlog import queue_cap
    from handlers.crm.runner import run_sync
    from handlers.tags import catalog as tagcatalog
    from scrm.adapters.db.engine import make_engine, make_sessionmaker
    from scrm.adapters.wecom.api import WeComClient
    from scrm.adapters.wecom.token import MemoryTokenStore
    from scrm.kernel.config import OutboxSettings, WeComSettings
    from scrm.kernel.outbox import Outbox

    tmp = Path(tempfile.mkdtemp())
    url = await fresh_database(db, tmp)
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    t_seed = time.perf_counter()
    await _seed(engine, sessions, n, ids)
    seed_s = time.perf_counter() - t_seed
    clock = SystemClock()
    settings = WeComSettings(corp_id=SANDBOX_CORP_ID, secret=SANDBOX_SECRET,
                             agent_id=SANDBOX_AGENT_ID, api_base=f"http://{HOST}:{port}",
                             api_limits_per_minute={API: limit})
    wecom = WeComClient(settings, token_store=MemoryTokenStore(clock), clock=clock)
    outbox = Outbox(engine, sessions, OutboxSettings(), clock, wecom)  # the service's defaults
    out: dict[str, Any] = {}
    try:
        async with sessions() as s, s.begin():
            await tagcatalog.refresh(s, wecom)  # the service keeps this mirror in step
        await wecom.tokens.get()  # gettoken before the clock starts
        out["rss_seeded"], out["seed_s"] = _rss_mb(), seed_s
        if plan_only:
            out.update(await _plan_only(sessions, outbox, wecom, clock, chunk, profile, max_s))
            return out
        t0, t0_perf = clock.now(), time.perf_counter()
        # One bulk worker, as `scrm serve` runs; it sends while the sync is still planning.
        worker = asyncio.create_task(outbox.run())
        # Queued no faster than sent, as `scrm sync tags` and the nightly job do (handlers.crm.backlog).
        report, _ = await run_sync(sessions, outbox, wecom, TAGS, clock, "bench", chunk=chunk,
                                   max_queued=queue_cap(settings, chunk))
        out["planned"], out["plan_s"], out["rss_planned"] = report.calls, time.perf_counter() - t0_perf, _rss_mb()
        rss_max = out["rss_planned"]
        while await _unfinished(sessions):
            await asyncio.sleep(1.0)
            rss_max = max(rss_max, _rss_mb())
        out["wall_s"] = (await _last_sent(sessions) - t0).total_seconds()
        out["rss_end"], out["rss_sampled_max"], out["peak"] = _rss_mb(), rss_max, peak_rss_mb()
        out["outbox"] = await outbox.counts()
        worker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await worker
    finally:
        await wecom.close()
        await engine.dispose()
        shutil.rmtree(tmp, ignore_errors=True)
    return out



class _Stop(Exception):
    """Raised between two chunks once ``--max-seconds`` have passed."""


class _Timeline(Progress):
    """Records (seconds since start, relations scanned) after every chunk instead of drawing;
    past ``max_s`` it stops the run there, between two committed chunks (a cancellation could
    land inside a statement)."""

    def __init__(self, max_s: float | None = None) -> None:
        super().__init__("sync", stream=io.StringIO())
        self.t0 = time.perf_counter()
        self.max_s = max_s
        self.points: list[tuple[float, int]] = [(0.0, 0)]

    def update(self, position: int, note: str) -> None:
        self.points.append((time.perf_counter() - self.t0, position))
        if self.max_s is not None and self.points[-1][0] >= self.max_s:
            raise _Stop

    def done(self, position: int, note: str) -> None:
        self.update(position, note)

    def rates(self, every: int) -> list[tuple[int, float]]:
        """Relations per second over each ``every`` relations: (relations scanned at the end, rate)."""
        out: list[tuple[int, float]] = []
        last_t, last_n = self.points[0]
        for t, n in self.points[1:]:
            if n - last_n >= every:
                out.append((n, (n - last_n) / max(t - last_t, 1e-9)))
                last_t, last_n = t, n
        return out


async def _plan_only(sessions: Any, outbox: Any, wecom: Any, clock: SystemClock, chunk: int,
                     profile: str | None, max_s: float | None) -> dict[str, Any]:
    """The sync's own cost, nothing sent: a dry run (scan and diff), then the real run (scan,
    diff and queueing) without the backlog cap, each timed; the real run stops at the first chunk
    boundary after ``max_s`` and reports how far it got."""
    from handlers.crm.runner import run_sync

    out: dict[str, Any] = {"peak_reset": reset_peak_rss()}
    t = time.perf_counter()
    dry, _ = await run_sync(sessions, None, wecom, TAGS, clock, "bench", dry_run=True, chunk=chunk)
    out["dry_s"], out["dry_scanned"], out["dry_calls"], out["rss_dry"] = (
        time.perf_counter() - t, dry.scanned, dry.calls, _rss_mb())
    profiler = cProfile.Profile() if profile else None
    timeline = _Timeline(max_s)
    t = time.perf_counter()
    if profiler:
        profiler.enable()
    try:
        report, _ = await run_sync(sessions, outbox, wecom, TAGS, clock, "bench", chunk=chunk, progress=timeline)
        out["scanned"], out["planned"], out["complete"] = report.scanned, report.calls, True
    except _Stop:
        out["scanned"] = out["planned"] = timeline.points[-1][1]  # committed chunks (one call each here)
        out["complete"] = False
    out["plan_s"] = timeline.points[-1][0] if not out["complete"] else time.perf_counter() - t
    if profiler and profile:
        profiler.disable()
        profiler.dump_stats(profile)
    out["rates"], out["rss_planned"] = timeline.rates(100_000), _rss_mb()
    out["queued"], out["peak"] = await _unfinished(sessions), peak_rss_mb()
    return out


RATIO_GOAL = 1.1
RSS_GOAL_MB = 300.0


def _one_run(n: int, limit: int, chunk: int, latency: Latency, db: str | None = None, plan_only: bool = False,
             profile: str | None = None, max_s: float | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """A freshly seeded sandbox (child) with this latency and the service side: both reports.
    With ``plan_only`` the sandbox holds the tag catalog only: nothing is sent to it."""
    ctx = mp.get_context("spawn")
    parent_conn, child_conn = ctx.Pipe()
    stop = ctx.Event()
    child = ctx.Process(target=sandbox_main, args=(0 if plan_only else n, limit, latency.sandbox_kwargs(),
                                                   child_conn, stop), daemon=True)
    child.start()
    try:
        if not parent_conn.poll(600):
            raise SystemExit("the sandbox did not start")
        _, port, ids = parent_conn.recv()
        out = asyncio.run(run_service(n, limit, chunk, port, ids, db, plan_only, profile, max_s))
        stop.set()
        sandbox = parent_conn.recv()
    finally:
        stop.set()
        child.join(30)
    return out, sandbox


def _database(db: str | None) -> str:
    from scrm.adapters.db.engine import display_url

    return display_url(db) if db else "SQLite (fresh file)"


def main_plan_only(n: int, limit: int, chunk: int, db: str | None, profile: str | None,
                   max_s: float | None) -> None:
    print("running: plan only (nothing sent) ...", file=sys.stderr)
    out, _ = _one_run(n, limit, chunk, Latency(), db, plan_only=True, profile=profile, max_s=max_s)
    rate = limit / 60
    print(f"tag sync bench, PLAN ONLY (no mark_tag sent): customers {n:,}  chunk {chunk}  {_database(db)}")
    rows = [
        ("seeding (not timed below)", f"{out['seed_s']:.1f} s"),
        ("dry run: relations scanned, calls planned", f"{out['dry_scanned']:,}, {out['dry_calls']:,}"),
        ("dry run (scan + diff)", f"{out['dry_s']:.1f} s = {out['dry_scanned'] / out['dry_s']:,.0f} relations/s"),
        ("real run: relations scanned, calls queued", f"{out['scanned']:,}, {out['planned']:,}"
         + ("" if out["complete"] else f" of {n:,}: STOPPED at --max-seconds")),
        ("real run (scan + diff + queue, no cap)",
         f"{out['plan_s']:.1f} s = {out['scanned'] / max(out['plan_s'], 1e-9):,.0f} relations/s"),
        *((f"  relations/s up to {k:,}", f"{r:,.0f}") for k, r in out["rates"]),
        ("outbox rows pending after it", f"{out['queued']:,}"),
        (f"mark_tag limit {limit:,}/min",
         f"{rate:,.0f} calls/s: sending all takes {out['dry_calls'] / rate / 60:,.0f} min"),
        ("queueing vs sending pace", f"{out['scanned'] / max(out['plan_s'], 1e-9) / rate:.1f}x the limit"),
        ("RSS MB seeded / after dry run / after real run",
         f"{out['rss_seeded']:.0f} / {out['rss_dry']:.0f} / {out['rss_planned']:.0f}"),
        ("RSS MB peak" + (" since seeding" if out["peak_reset"] else " (seeding included)"), f"{out['peak']:.0f}"),
        (f"goal peak < {RSS_GOAL_MB:.0f} MB", yes_no(out["peak"] < RSS_GOAL_MB)),
    ]
    side_by_side(["plan only"], [(name, [value]) for name, value in rows], title="")


def main(n: int, limit: int, chunk: int, latencies: list[Latency], db: str | None = None) -> None:
    runs: list[tuple[Latency, dict[str, Any], dict[str, Any]]] = []
    for latency in latencies:
        print(f"running: {latency.label} ...", file=sys.stderr)
        runs.append((latency, *_one_run(n, limit, chunk, latency, db)))
    print(f"tag sync bench: customers {n:,}  mark_tag limit {limit:,}/min  chunk {chunk}  {_database(db)}")

    def ratio(out: dict[str, Any], sandbox: dict[str, Any]) -> float:
        return float(out["wall_s"] / (sandbox["calls"] / (limit / 60)))

    rows: list[tuple[str, list[str]]] = [
        ("mark_tag calls (planned)", [f"{sb['calls']:,} ({out['planned']:,})" for _, out, sb in runs]),
        ("seeding (not timed)", [f"{out['seed_s']:.1f} s" for _, out, _ in runs]),
        ("plan (overlapped with sending)", [f"{out['plan_s']:.1f} s" for _, out, _ in runs]),
        ("wall", [f"{out['wall_s']:.1f} s" for _, out, _ in runs]),
        ("limit-bound minimum", [f"{sb['calls'] / (limit / 60):.1f} s" for _, _, sb in runs]),
        ("ratio wall/minimum", [f"{ratio(out, sb):.3f}" for _, out, sb in runs]),
        (f"goal ratio <= {RATIO_GOAL}", [yes_no(ratio(out, sb) <= RATIO_GOAL) for _, out, sb in runs]),
        ("45009 answers", [str(sb["rejected_45009"]) for _, _, sb in runs]),
        ("goal 45009 = 0", [yes_no(sb["rejected_45009"] == 0) for _, _, sb in runs]),
        ("relations tagged right", [f"{sb['relations_right']:,}/{n:,}" for _, _, sb in runs]),
        ("answers delayed, mean delay",
         [f"{sb['delayed']:,}, {1000 * sb['delay_s'] / sb['delayed']:.0f} ms" if sb["delayed"] else "0"
          for _, _, sb in runs]),
        ("RSS MB seeded / planned / end", [f"{out['rss_seeded']:.0f} / {out['rss_planned']:.0f} / "
                                           f"{out['rss_end']:.0f}" for _, out, _ in runs]),
        ("RSS MB sampled max / peak", [f"{out['rss_sampled_max']:.0f} / {out['peak']:.0f}" for _, out, _ in runs]),
        (f"goal peak < {RSS_GOAL_MB:.0f} MB", [yes_no(out["peak"] < RSS_GOAL_MB) for _, out, _ in runs]),
        ("sandbox process peak MB", [f"{sb['peak_mb']:.0f}" for _, _, sb in runs]),
    ]
    side_by_side([latency.label for latency, _, _ in runs], rows)
    for latency, out, _ in runs:
        print(f"  {latency.label}: outbox {out['outbox']}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--limit", type=int, default=6000, help="mark_tag calls per minute (sandbox and client)")
    parser.add_argument("--chunk", type=int, default=500, help="relations per sync chunk ([crm] sync_chunk)")
    parser.add_argument("--db", help="a PostgreSQL URL (postgresql+asyncpg://...), migrated and EMPTIED before "
                                     "each run; default: a fresh SQLite file per run")
    parser.add_argument("--plan-only", action="store_true",
                        help="send nothing: time the sync's scan, diff and queueing alone (for sizes whose calls "
                             "would take hours at the limit, e.g. --customers 1000000)")
    parser.add_argument("--profile", help="with --plan-only: write cProfile stats of the real run to this file")
    parser.add_argument("--max-seconds", type=float,
                        help="with --plan-only: stop the real run after this long and report how far it got")
    add_latency_args(parser)
    args = parser.parse_args()
    if (args.profile or args.max_seconds) and not args.plan_only:
        parser.error("--profile and --max-seconds go with --plan-only")
    if args.plan_only:
        main_plan_only(args.customers, args.limit, args.chunk, args.db, args.profile, args.max_seconds)
    else:
        main(args.customers, args.limit, args.chunk, latency_runs(parser, args), args.db)
