"""Tag sync bench: N customers, ~3 CRM tag changes each, against the sandbox on loopback.

    .venv/bin/python -m bench.tag_sync --customers 100000 --limit 6000

Two processes, both on 127.0.0.1 and the real clock:

* the **sandbox** (child): the WeCom emulator seeded with N customers of one manager, each
  tagged ``客户等级/V1`` + ``兴趣/理财``; ``externalcontact/mark_tag`` limited to ``--limit`` calls
  per clock minute (over it: 45009, counted by a middleware);
* the **service side** (this process): a fresh, migrated SQLite database seeded with the same
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
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing as mp
import os
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Event as MpEvent
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # also runnable as `python bench/tag_sync.py`
    sys.path.insert(0, str(ROOT))

from aiohttp import web

from bench._latency import Latency, add_latency_args, latency_runs, side_by_side, yes_no
from bench._proc import until_stopped
from scrm.kernel.clock import SystemClock
from scrm.playbook.models import TagsFile
from scrm.sandbox import SANDBOX_AGENT_ID, SANDBOX_CORP_ID, SANDBOX_SECRET

HOST = "127.0.0.1"
API = "externalcontact/mark_tag"
FREQ_LIMIT = 45009
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


def _peak_mb() -> float:
    """This process's peak RSS. VmHWM, not ru_maxrss: Linux carries ru_maxrss across exec, so a
    spawned child's would start at its parent's RSS at the time of the spawn."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


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
    rejected = [0]

    @web.middleware
    async def count_45009(request: web.Request,
                          handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        resp = await handler(request)
        if isinstance(resp, web.Response) and isinstance(resp.body, bytes | bytearray):
            with contextlib.suppress(ValueError, TypeError, AttributeError):
                rejected[0] += int(json.loads(resp.body).get("errcode", 0) or 0) == FREQ_LIMIT
        return resp

    server.app.middlewares.append(count_45009)
    runner = web.AppRunner(server.app, handle_signals=False, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, HOST, 0)
    await site.start()
    conn.send(("ready", runner.addresses[0][1], ids))
    try:
        await until_stopped(stop)
    finally:
        await runner.cleanup()
    calls = state.received_calls(API)
    done = sum(1 for i in range(n) if set(state.require_follow("m1", _ext(i)).tag_ids)
               == {ids["客户等级/V2"], ids["产品持有/代发"], ids["兴趣/理财"]})
    conn.send({"calls": len(calls), "rejected_45009": rejected[0], "relations_right": done,
               "peak_mb": _peak_mb(), "delayed": server.latency.delayed, "delay_s": server.latency.total_s})


# --------------------------------------------------------------------------- the service side (this process)


async def _seed(sessions: Any, n: int, ids: dict[str, str]) -> None:
    from handlers.contacts.models import Follow
    from handlers.crm.models import Binding, CrmCustomer
    from handlers.tags.models import FollowTag

    now = SystemClock().now()
    start = [ids[t] for t in START_TAGS]
    for lo in range(0, n, SEED_CHUNK):  # in chunks: memory stays flat
        follows, tags, crm, binds = [], [], [], []
        for i in range(lo, min(n, lo + SEED_CHUNK)):
            ext = _ext(i)
            follows.append({"userid": "m1", "external_userid": ext, "created_at": now, "status": "active"})
            tags += [{"userid": "m1", "external_userid": ext, "tag_id": t, "added_at": now} for t in start]
            crm.append({"crm_id": f"B{i}", "attributes": {"tier": "V2", "products": ["payroll"]}, "updated_at": now})
            binds.append({"crm_id": f"B{i}", "external_userid": ext, "source": "direct", "bound_at": now})
        async with sessions() as s, s.begin():
            for model, rows in ((Follow, follows), (FollowTag, tags), (CrmCustomer, crm), (Binding, binds)):
                await s.execute(model.__table__.insert(), rows)


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


async def run_service(n: int, limit: int, chunk: int, port: int, ids: dict[str, str]) -> dict[str, Any]:
    from handlers.crm.backlog import queue_cap
    from handlers.crm.runner import run_sync
    from handlers.tags import catalog as tagcatalog
    from scrm.adapters.db import migrate
    from scrm.adapters.db.engine import make_engine, make_sessionmaker
    from scrm.adapters.wecom.api import WeComClient
    from scrm.adapters.wecom.token import MemoryTokenStore
    from scrm.kernel.config import OutboxSettings, WeComSettings
    from scrm.kernel.outbox import Outbox

    tmp = Path(tempfile.mkdtemp())
    url = f"sqlite+aiosqlite:///{tmp / 'bench.db'}"
    await asyncio.to_thread(migrate.upgrade, url)
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    await _seed(sessions, n, ids)
    clock = SystemClock()
    settings = WeComSettings(corp_id=SANDBOX_CORP_ID, secret=SANDBOX_SECRET,  # type: ignore[arg-type]
                             agent_id=SANDBOX_AGENT_ID, api_base=f"http://{HOST}:{port}",
                             api_limits_per_minute={API: limit})
    wecom = WeComClient(settings, token_store=MemoryTokenStore(clock), clock=clock)
    outbox = Outbox(engine, sessions, OutboxSettings(), clock, wecom)  # the service's defaults
    out: dict[str, Any] = {}
    try:
        async with sessions() as s, s.begin():
            await tagcatalog.refresh(s, wecom)  # the service keeps this mirror in step
        await wecom.tokens.get()  # gettoken before the clock starts
        out["rss_seeded"] = _rss_mb()
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
        out["rss_end"], out["rss_sampled_max"], out["peak"] = _rss_mb(), rss_max, _peak_mb()
        out["outbox"] = await outbox.counts()
        worker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await worker
    finally:
        await wecom.close()
        await engine.dispose()
        shutil.rmtree(tmp, ignore_errors=True)
    return out


RATIO_GOAL = 1.1
RSS_GOAL_MB = 300.0


def _one_run(n: int, limit: int, chunk: int, latency: Latency) -> tuple[dict[str, Any], dict[str, Any]]:
    """A freshly seeded sandbox (child) with this latency and the service side: both reports."""
    ctx = mp.get_context("spawn")
    parent_conn, child_conn = ctx.Pipe()
    stop = ctx.Event()
    child = ctx.Process(target=sandbox_main, args=(n, limit, latency.sandbox_kwargs(), child_conn, stop),
                        daemon=True)
    child.start()
    try:
        if not parent_conn.poll(600):
            raise SystemExit("the sandbox did not start")
        _, port, ids = parent_conn.recv()
        out = asyncio.run(run_service(n, limit, chunk, port, ids))
        stop.set()
        sandbox = parent_conn.recv()
    finally:
        stop.set()
        child.join(30)
    return out, sandbox


def main(n: int, limit: int, chunk: int, latencies: list[Latency]) -> None:
    runs: list[tuple[Latency, dict[str, Any], dict[str, Any]]] = []
    for latency in latencies:
        print(f"running: {latency.label} ...", file=sys.stderr)
        runs.append((latency, *_one_run(n, limit, chunk, latency)))
    print(f"tag sync bench: customers {n:,}  mark_tag limit {limit:,}/min  chunk {chunk}")

    def ratio(out: dict[str, Any], sandbox: dict[str, Any]) -> float:
        return float(out["wall_s"] / (sandbox["calls"] / (limit / 60)))

    rows: list[tuple[str, list[str]]] = [
        ("mark_tag calls (planned)", [f"{sb['calls']:,} ({out['planned']:,})" for _, out, sb in runs]),
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
    add_latency_args(parser)
    args = parser.parse_args()
    main(args.customers, args.limit, args.chunk, latency_runs(parser, args))
