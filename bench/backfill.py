"""Backfill bench: adopt a corp with N existing relations from the sandbox at a given API limit.

    .venv/bin/python -m bench.backfill --relations 200000 --limit 6000
    .venv/bin/python -m bench.backfill --relations 200000 --limit 6000 --db postgresql+asyncpg://postgres@127.0.0.1:5432/scrm_bench

Two processes on 127.0.0.1 and the real clock:

* the **sandbox** (child): the WeCom emulator seeded (``scrm.sandbox.seed``) with N relations of
  N/100 members (every tenth customer followed by two), 20 corp tags, 2 on each relation, and
  ``--groups`` customer groups; every API limited to ``--limit`` calls per clock minute (over
  it: 45009, counted);
* the **service side** (this process): a fresh, migrated SQLite database (or ``--db URL``,
  migrated and **emptied**: give it a bench database) and a ``WeComClient`` paced at the same
  limit, running ``handlers.backfill.runner.run_backfill`` as the first start does: the staff
  directory (``user/get`` per member), the tag library, the relations (``batch/get_by_user``,
  100 a page), the groups, the contact ways.

Prints the wall time of the whole run and of the relations stage, each beside its limit-bound
minimum: per API, the calls beyond the bucket's burst at the bucket's refill rate (the client's
own ``TokenBucket.for_limit``: at most ``limit`` calls start in any minute), summed over the
APIs as the stages run one after another (goal: ≤ 1.1×). Also this process's RSS at each quarter
of the relations and its peak (goal: flat), the 45009 count (goal 0), and whether the mirror
holds exactly the N relations with their tags.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import sys
import tempfile
import time
from collections import Counter
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Event as MpEvent
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # also runnable as `python bench/backfill.py`
    sys.path.insert(0, str(ROOT))


from bench._pg import fresh_database
from bench._proc import peak_rss_mb, reset_peak_rss, rss_mb
from bench._sandbox import serving
from scrm.kernel.clock import SystemClock
from scrm.sandbox import SANDBOX_AGENT_ID, SANDBOX_CORP_ID, SANDBOX_SECRET
from tests.support.processes import until_stopped

HOST = "127.0.0.1"
RATIO_GOAL = 1.1
RELATIONS_API = "externalcontact/batch/get_by_user"


# --------------------------------------------------------------------------- the sandbox (child)


def sandbox_main(n: int, limit: int, groups: int, conn: Connection, stop: MpEvent) -> None:
    asyncio.run(_serve_sandbox(n, limit, groups, conn, stop))


async def _serve_sandbox(n: int, limit: int, groups: int, conn: Connection, stop: MpEvent) -> None:
    from scrm.sandbox.seed import seed_existing
    from scrm.sandbox.server import SandboxServer
    from scrm.sandbox.state import SandboxState

    clock = SystemClock()
    state = SandboxState()
    t0 = time.perf_counter()
    seeded = seed_existing(state, clock.now().timestamp(), relations=n, tags=20, tags_per_relation=2, groups=groups,
                           group_size=50)
    seed_s = time.perf_counter() - t0
    server = SandboxServer(state, clock, per_api_per_minute=limit)
    async with serving(server, HOST) as served:
        truth = sum(len(f.tag_ids) for f in state.follows.values())
        conn.send(("ready", served.port, {"members": len(seeded.members), "relations": seeded.relations,
                                          "tags_on_relations": truth, "seed_s": seed_s}))
        await until_stopped(stop)
    calls = Counter(c.path.removeprefix("/cgi-bin/") for c in state.received_calls())
    conn.send({"calls": dict(calls), "rejected_45009": served.rejected_45009, "peak_mb": peak_rss_mb()})


# --------------------------------------------------------------------------- the service side (this process)


def limit_bound_s(calls: dict[str, int], limit: int) -> float:
    """The least time ``calls`` (per API) take under the client's buckets of ``limit`` a minute,
    one API after another (``TokenBucket.for_limit``: a burst, then the refill rate)."""
    burst = max(1, min(limit - 1, limit // 60))
    rate = max(limit - burst, 1) / 60.0
    return sum(max(0, n - burst) / rate for n in calls.values())


async def run_service(n: int, limit: int, port: int, db: str | None) -> dict[str, Any]:
    from sqlalchemy import func, select

    from handlers.backfill.context import Context, PageDone
    from handlers.backfill.runner import run_backfill
    from handlers.contacts.api import Follow
    from handlers.tags.api import FollowTag
    from scrm.adapters.db.engine import make_engine, make_sessionmaker
    from scrm.adapters.wecom.api import WeComClient
    from scrm.adapters.wecom.token import MemoryTokenStore
    from scrm.kernel.config import InboxSettings, WeComSettings
    from scrm.kernel.inbox import Inbox

    tmp = Path(tempfile.mkdtemp())
    url = await fresh_database(db, tmp)
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    clock = SystemClock()
    settings = WeComSettings(corp_id=SANDBOX_CORP_ID, secret=SANDBOX_SECRET, agent_id=SANDBOX_AGENT_ID,
                             api_base=f"http://{HOST}:{port}", per_api_per_minute=limit)
    wecom = WeComClient(settings, token_store=MemoryTokenStore(clock), clock=clock)
    out: dict[str, Any] = {"rss": []}
    marks = {max(1, round(n / 100 * q / 4)) for q in (1, 2, 3)}
    stage_t: dict[str, float] = {}

    def on_page(done: PageDone) -> None:
        stage_t.setdefault(done.stage, time.perf_counter())
        if done.stage == "relations" and done.pages in marks:
            out["rss"].append(round(rss_mb(), 1))

    ctx = Context(sessions=sessions, wecom=wecom, clock=clock, inbox=Inbox(engine, sessions, InboxSettings(), clock),
                  corp_id=SANDBOX_CORP_ID, owner="bench", on_page=on_page)
    try:
        await wecom.tokens.get()  # gettoken before the clock starts
        reset_peak_rss()
        out["rss_start"] = rss_mb()
        t0 = time.perf_counter()
        outcome = await run_backfill(ctx, trigger="cli")
        out["wall_s"] = time.perf_counter() - t0
        out["rss_end"], out["peak"] = rss_mb(), peak_rss_mb()
        out["stages"] = [line.line() for line in outcome.stages]
        out["relations_s"] = _relations_wall(stage_t, t0 + out["wall_s"])
        async with sessions() as s:
            out["follows"] = int(await s.scalar(select(func.count()).select_from(Follow)) or 0)
            out["follow_tags"] = int(await s.scalar(select(func.count()).select_from(FollowTag)) or 0)
    finally:
        await wecom.close()
        await engine.dispose()
    return out


def _relations_wall(stage_t: dict[str, float], end: float) -> float:
    """From the relations stage's first page to the next stage's first (or the end): close
    enough, the stage's first read happens one call before its first page."""
    order = ["relations", "groups", "ways"]
    start = stage_t.get("relations", end)
    nxt = next((stage_t[s] for s in order[1:] if s in stage_t), end)
    return nxt - start


def one_run(n: int, limit: int, groups: int, db: str | None) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    ctx = mp.get_context("spawn")
    parent_conn, child_conn = ctx.Pipe()
    stop = ctx.Event()
    child = ctx.Process(target=sandbox_main, args=(n, limit, groups, child_conn, stop), daemon=True)
    child.start()
    try:
        if not parent_conn.poll(600):
            raise SystemExit("the sandbox did not start")
        _, port, seeded = parent_conn.recv()
        out = asyncio.run(run_service(n, limit, port, db))
        stop.set()
        sandbox = parent_conn.recv()
    finally:
        stop.set()
        child.join(30)
    return out, sandbox, seeded


def main(n: int, limit: int, groups: int, db: str | None) -> int:
    print(f"running: {n:,} relations at {limit:,} calls/min per API ...", file=sys.stderr)
    out, sandbox, seeded = one_run(n, limit, groups, db)
    calls: dict[str, int] = {k: v for k, v in sandbox["calls"].items() if k != "gettoken"}
    minimum = limit_bound_s(calls, limit)
    rel_calls = calls.get(RELATIONS_API, 0)
    rel_min = limit_bound_s({RELATIONS_API: rel_calls}, limit)
    # The relations stage starts with a bucket that refilled during the directory stage: its own
    # bound counts no burst (the first page is timed from its end, not its start).
    rel_min_no_burst = max(0, rel_calls - 1) / (max(limit - max(1, limit // 60), 1) / 60.0)
    ratio = out["wall_s"] / minimum if minimum else float("nan")
    rel_ratio = out["relations_s"] / rel_min_no_burst if rel_min_no_burst else float("nan")
    right = out["follows"] == seeded["relations"] and out["follow_tags"] == seeded["tags_on_relations"]
    print(f"backfill bench: {seeded['relations']:,} relations, {seeded['members']:,} members, "
          f"limit {limit:,}/min per API, database {db or 'SQLite (fresh file)'}")
    for line in out["stages"]:
        print(f"  {line}")
    print("  calls: " + ", ".join(f"{k} {v:,}" for k, v in sorted(calls.items())))
    print(f"  whole run:       {out['wall_s']:8.1f} s   limit-bound minimum {minimum:8.1f} s   "
          f"ratio {ratio:.3f}  (goal <= {RATIO_GOAL})")
    print(f"  relations stage: {out['relations_s']:8.1f} s   limit-bound minimum {rel_min_no_burst:8.1f} s   "
          f"ratio {rel_ratio:.3f}  ({rel_calls:,} pages; {rel_min:.1f} s with a full burst)")
    print(f"  RSS (this process): start {out['rss_start']:.0f} MB, at 1/4, 1/2, 3/4 of the relations "
          f"{', '.join(f'{r:.0f}' for r in out['rss'])} MB, end {out['rss_end']:.0f} MB, peak {out['peak']:.0f} MB")
    print(f"  sandbox (separate process): peak RSS {sandbox['peak_mb']:.0f} MB; seeded in {seeded['seed_s']:.1f} s")
    print(f"  45009 answers: {sandbox['rejected_45009']} (goal 0);  mirror exact: {'yes' if right else 'NO'} "
          f"({out['follows']:,} relations, {out['follow_tags']:,} tags)")
    return 0 if right and sandbox["rejected_45009"] == 0 else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--relations", type=int, default=200_000)
    parser.add_argument("--limit", type=int, default=6000, help="calls per minute per API (client and sandbox)")
    parser.add_argument("--groups", type=int, default=0, help="customer groups of 50 customers to backfill too")
    parser.add_argument("--db", help="a PostgreSQL bench database URL (migrated and EMPTIED); "
                                     "default a fresh SQLite file")
    a = parser.parse_args()
    raise SystemExit(main(a.relations, a.limit, a.groups, a.db))
