"""Outbox throughput benchmark: how close do the outbox workers get to the per-API rate limit?

Two processes, both on 127.0.0.1, both on the real system clock:

* the **sandbox** (child): the WeCom emulator, ``SandboxServer(state, SystemClock())`` with
  ``message/send`` limited to ``--limit-per-minute`` (fixed clock minutes; over it, 45009), and
  ``--members`` members seeded so the per-member limits (30/min, 1,000/h) never bind. An aiohttp
  middleware counts every answer by path and errcode, so 45009 rejections are counted exactly;
* the **outbox** (this process): ``Runtime(settings, wecom=client, load_playbook=False)`` on a
  fresh, migrated SQLite file (or ``--db URL``), its ``WeComClient`` pointed at the sandbox with the
  *same* per-minute limit for ``message/send``. ``--actions`` text messages are queued with
  ``outbox.add`` (round robin over the members, distinct contents so WeCom's duplicate check
  drops nothing), then ``--workers`` ``runtime.outbox.run()`` tasks send them.

The access token is fetched before the clock starts (gettoken has its own bucket). The run ends
when every action is terminal (sent or failed) or at the time bound, whichever comes first; the
elapsed time is from the start of the workers to the last ``sent_at``. Prints the figures and
whether the goals hold (actual/ideal ≥ 0.95, zero 45009). Exit status 0 whatever the figures;
non-zero only when something crashed or the sandbox did not start.

    .venv/bin/python -m bench.outbox [--limit-per-minute 1200] [--actions N] [--db URL] [--profile FILE]

WeCom's latency (``bench/_latency.py``): by default the bench runs twice, with a sandbox that
answers at once and with one whose every answer waits ``--latency`` ± ``--jitter`` ms (150 ± 50),
each on a fresh sandbox and (SQLite) database, and prints them side by side. With latency the
outbox needs ``concurrency`` calls in flight per ``latency`` seconds to keep up with the limit.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import multiprocessing as mp
import os
import pstats
import sys
import tempfile
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Event as MpEvent
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # also runnable as `python bench/outbox.py`
    sys.path.insert(0, str(ROOT))

from sqlalchemy import event

from bench._latency import Latency, add_latency_args, latency_runs, side_by_side, yes_no
from bench._sandbox import serving
from scrm.kernel.clock import SystemClock
from scrm.sandbox import SANDBOX_AGENT_ID, SANDBOX_CORP_ID, SANDBOX_SECRET
from tests.support.processes import until_stopped

HOST = "127.0.0.1"
API = "message/send"
RATIO_GOAL = 0.95


# --------------------------------------------------------------------------- the sandbox (child)


def _member(i: int) -> str:
    return f"bm{i:05d}"


def sandbox_main(limit: int, members: int, latency: dict[str, Any], conn: Connection, stop: MpEvent) -> None:
    asyncio.run(_serve_sandbox(limit, members, latency, conn, stop))


async def _serve_sandbox(limit: int, members: int, latency: dict[str, Any], conn: Connection,
                         stop: MpEvent) -> None:
    from scrm.sandbox.server import SandboxServer
    from scrm.sandbox.state import SandboxState

    state = SandboxState()
    for i in range(members):
        state.add_member(_member(i), f"成员{i}")
    server = SandboxServer(state, SystemClock(), per_api_overrides={API: limit}, **latency)
    async with serving(server, HOST) as served:
        conn.send(("ready", served.port))
        cpu0 = time.process_time()
        await until_stopped(stop)
    deliveries = [d for d in state.deliveries if d.kind == "app"]
    conn.send({
        "answers": {f"{p} {e}": n for (p, e), n in sorted(served.answers.items())},
        "rejected_45009": served.rejected_45009,
        "accepted": len(state.received_calls(API)),
        "delivered": sum(1 for d in deliveries if not d.dropped),
        "dropped": dict(Counter(d.dropped for d in deliveries if d.dropped)),
        "cpu_s": time.process_time() - cpu0,
        "delayed": server.latency.delayed,
        "delay_s": server.latency.total_s,
    })


# --------------------------------------------------------------------------- the outbox (this process)


def _isolate(workdir: str) -> None:
    # load_settings reads ./scrm.toml and SCRM_* variables: a benchmark must not pick those up.
    os.chdir(workdir)
    for key in [k for k in os.environ if k.startswith("SCRM_")]:
        del os.environ[key]


async def _statuses(runtime: Any, prefix: str) -> Counter[str]:
    from sqlalchemy import func, select

    from scrm.kernel.models import OutboxAction

    async with runtime.sessions() as s:
        rows = (await s.execute(select(OutboxAction.status, func.count())
                                .where(OutboxAction.idempotency_key.startswith(prefix))
                                .group_by(OutboxAction.status))).all()
    return Counter({status: n for status, n in rows})


async def _last_sent(runtime: Any, prefix: str) -> datetime | None:
    from sqlalchemy import func, select

    from scrm.kernel.models import OutboxAction

    async with runtime.sessions() as s:
        last: datetime | None = await s.scalar(select(func.max(OutboxAction.sent_at))
                                               .where(OutboxAction.idempotency_key.startswith(prefix)))
    if last is not None and last.tzinfo is None:
        last = last.replace(tzinfo=UTC)
    return last


async def run_outbox(args: argparse.Namespace, db_url: str, sandbox_url: str, profile: str | None) -> dict[str, Any]:
    from scrm.adapters.wecom.api import WeComClient
    from scrm.adapters.wecom.token import MemoryTokenStore
    from scrm.kernel.service import Runtime
    from scrm.main import load_settings

    outbox_overrides = {k: v for k, v in (("batch_size", args.batch_size), ("concurrency", args.concurrency))
                        if v is not None}
    settings = load_settings(
        None,
        database={"url": db_url},
        wecom={"corp_id": SANDBOX_CORP_ID, "secret": SANDBOX_SECRET, "agent_id": SANDBOX_AGENT_ID,
               "api_base": sandbox_url, "api_limits_per_minute": {API: args.limit_per_minute}},
        outbox=outbox_overrides,
        log={"level": "WARNING", "format": "text"},
    )
    clock = SystemClock()
    client = WeComClient(settings.wecom, token_store=MemoryTokenStore(clock), clock=clock)
    runtime = Runtime(settings, clock=clock, wecom=client, load_playbook=False)
    n = args.actions
    prefix = f"bench-outbox:{uuid.uuid4().hex[:8]}:"
    result: dict[str, Any] = {"settings": settings}
    try:
        async with runtime.sessions() as s, s.begin():
            for i in range(n):
                await runtime.outbox.add(s, f"{prefix}{i}", API, {
                    "touser": _member(i % args.members), "msgtype": "text", "agentid": SANDBOX_AGENT_ID,
                    "text": {"content": f"outbox bench {prefix}{i}"}})
        await client.tokens.get()  # gettoken before the clock starts; it has its own bucket
        bucket = client.limiter.bucket(API)  # created now, full: the run starts with a whole burst
        result["burst"], result["rate"] = bucket.capacity, bucket.per_second

        # Transactions and statements of the run: unlike CPU, they do not depend on the load.
        db_counts: Counter[str] = Counter()
        event.listen(runtime.engine.sync_engine, "commit", lambda _conn: db_counts.update(["commits"]))
        event.listen(runtime.engine.sync_engine, "before_cursor_execute",
                     lambda *_args: db_counts.update(["statements"]))
        result["db"] = db_counts
        # CPU time of the loop's thread, not wall time: a call waiting on the sandbox costs nothing.
        profiler = cProfile.Profile(time.thread_time) if profile else None
        cpu0, t0_perf, t0 = time.process_time(), time.perf_counter(), clock.now()
        if profiler is not None:
            profiler.enable()
        workers = [asyncio.create_task(runtime.outbox.run(idle_s=0.2), name=f"outbox-{k}")
                   for k in range(args.workers)]
        deadline = t0_perf + args.timeout
        counts: Counter[str] = Counter()
        while time.perf_counter() < deadline:
            # Once a second: the count scans this run's rows, and its CPU is the bench's, not the
            # outbox's (the wall time comes from the last sent_at, not from this poll).
            await asyncio.sleep(1.0)
            counts = await _statuses(runtime, prefix)
            if counts["sent"] + counts["failed"] + counts["cancelled"] >= n:
                break
        timed_out = time.perf_counter() >= deadline
        for w in workers:
            w.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        if profiler is not None and profile is not None:
            profiler.disable()
            profiler.dump_stats(profile)
            result["profile"], result["profile_path"] = profiler, profile
        result["cpu_s"] = time.process_time() - cpu0
        result["counts"] = await _statuses(runtime, prefix)
        last = await _last_sent(runtime, prefix)
        result["elapsed_s"] = (last - t0).total_seconds() if last is not None else time.perf_counter() - t0_perf
        result["timed_out"] = timed_out
    finally:
        await runtime.stop()  # closes the client and disposes of the engine
    return result


def _report(args: argparse.Namespace, db_url: str, runs: list[tuple[Latency, dict[str, Any], dict[str, Any]]]) -> None:
    n, limit = args.actions, args.limit_per_minute
    _, first, _ = runs[0]
    burst, rate = first["burst"], first["rate"]
    # The limit-bound ideal. The client's bucket for message/send starts full with `burst`
    # tokens (limit // 60) and refills at rate = (limit - burst) / 60 per second, so at most
    # `limit` calls start in any 60 s window (scrm/wecom/ratelimit.py). A perfect sender starts
    # `burst` calls at t = 0 and then one every 1/rate seconds: the last of N starts at
    #     ideal_s = max(0, N - burst) / rate
    # and nothing faster is allowed. The ratio is ideal_s / measured seconds (= measured actions/s
    # over ideal actions/s). Measured seconds also include the last reply and its DB write (a few ms,
    # plus one WeCom latency when the sandbox has one).
    # Against the nominal limit/60 per second (no burst, no refill discount) the ideal would be
    # N / (limit / 60); printed as well, for reference.
    ideal_s = max(0.0, n - burst) / rate
    nominal_s = n / (limit / 60.0)
    ob = first["settings"].outbox
    db = db_url.split(":")[0].split("+")[0]
    print(f"outbox bench: {API} limited to {limit}/min in sandbox and client "
          f"(client bucket: burst {burst:g}, then {rate:.3f}/s); {n} actions to {args.members} members; "
          f"{args.workers} worker(s), batch {ob.batch_size}, concurrency {ob.concurrency}; db {db}")
    ideal_rate = n / ideal_s if ideal_s > 0 else float("inf")
    print(f"  ideal (limit-bound): {ideal_s:.2f} s  ->  {ideal_rate:.2f} actions/s   "
          f"[nominal limit/60: {nominal_s:.2f} s, {limit / 60:.2f}/s]")

    def ratio(out: dict[str, Any]) -> float:
        return ideal_s / out["elapsed_s"] if out["elapsed_s"] > 0 else float("nan")

    def sent(out: dict[str, Any]) -> str:
        counts: Counter[str] = out["counts"]
        other = {k: v for k, v in counts.items() if k != "sent"}
        return (f"{counts['sent']}/{n}" + (f" others {dict(other)}" if other else "")
                + (" (TIME BOUND HIT)" if out["timed_out"] else ""))

    rows: list[tuple[str, list[str]]] = [
        ("actions sent", [sent(out) for _, out, _ in runs]),
        ("wall", [f"{out['elapsed_s']:.2f} s" for _, out, _ in runs]),
        ("actions/s", [f"{out['counts']['sent'] / out['elapsed_s']:.2f}" for _, out, _ in runs]),
        ("ratio actual/ideal", [f"{ratio(out):.3f}" for _, out, _ in runs]),
        (f"goal ratio >= {RATIO_GOAL}", [yes_no(ratio(out) >= RATIO_GOAL) for _, out, _ in runs]),
        (f"sandbox: {API} accepted", [str(sb["accepted"]) for _, _, sb in runs]),
        ("sandbox: 45009 answers", [str(sb["rejected_45009"]) for _, _, sb in runs]),
        ("goal 45009 = 0", [yes_no(sb["rejected_45009"] == 0) for _, _, sb in runs]),
        ("sandbox: delivered (dropped)", [f"{sb['delivered']} ({sum(sb['dropped'].values())})" for _, _, sb in runs]),
        ("sandbox: answers delayed, mean delay",
         [f"{sb['delayed']}, {1000 * sb['delay_s'] / sb['delayed']:.0f} ms" if sb["delayed"] else "0"
          for _, _, sb in runs]),
        ("cpu: outbox process", [f"{out['cpu_s']:.2f} s ({1000 * out['cpu_s'] / max(1, out['counts']['sent']):.2f} "
                                 f"ms/action)" for _, out, _ in runs]),
        ("cpu: sandbox", [f"{sb['cpu_s']:.2f} s" for _, _, sb in runs]),
        ("db: commits, statements per action (with the bench's polls)",
         [f"{out['db']['commits'] / max(1, out['counts']['sent']):.2f}, "
          f"{out['db']['statements'] / max(1, out['counts']['sent']):.2f}" for _, out, _ in runs]),
    ]
    side_by_side([latency.label for latency, _, _ in runs], rows)
    if n <= limit:
        print(f"  [N <= {limit}: no clock minute can overflow in this run, so the 45009 check means little]")
    for latency, _, sb in runs:
        print(f"  {latency.label}: sandbox answers {sb['answers']}")
    for latency, out, _ in runs:
        profiler = out.get("profile")
        if profiler is not None:
            buf = io.StringIO()
            pstats.Stats(profiler, stream=buf).sort_stats("tottime").print_stats(args.profile_top)
            print(f"  {latency.label}: profile written to {out['profile_path']}; top {args.profile_top} by tottime:")
            print(buf.getvalue())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--limit-per-minute", type=int, default=1200,
                   help=f"{API} calls per minute, in the sandbox and in the client (default 1200)")
    p.add_argument("--actions", type=int, help="actions to queue (default: 30 s at the limit, limit / 2)")
    p.add_argument("--members", type=int, help="distinct recipients, round robin (default min(actions, 2000))")
    p.add_argument("--workers", type=int, default=1, help="runtime.outbox.run() tasks (default 1)")
    p.add_argument("--batch-size", type=int, help="outbox.batch_size override (default: the service default)")
    p.add_argument("--concurrency", type=int, help="outbox.concurrency override (default: the service default)")
    p.add_argument("--db", help="database URL (default: a fresh SQLite file in a temporary directory)")
    p.add_argument("--timeout", type=float, help="time bound in seconds (default 1.5 x ideal + 30)")
    p.add_argument("--profile", help="cProfile the outbox process's send phase into this file")
    p.add_argument("--profile-top", type=int, default=25)
    add_latency_args(p)
    args = p.parse_args(argv)
    latencies = latency_runs(p, args)
    if args.limit_per_minute < 2:
        p.error("--limit-per-minute must be >= 2")
    args.actions = args.actions or max(1, args.limit_per_minute // 2)
    args.members = args.members or min(args.actions, 2000)
    if args.timeout is None:
        args.timeout = 1.5 * args.actions / (args.limit_per_minute / 60.0) + 30.0
    if args.profile:
        args.profile = str(Path(args.profile).resolve())
    if args.db and args.db.startswith("sqlite") and ":///./" in args.db:
        args.db = args.db.replace(":///./", f":///{Path.cwd()}/")  # we chdir below

    from scrm.adapters.db import migrate
    from scrm.kernel.logs import setup_logging

    with tempfile.TemporaryDirectory(prefix="scrm-outbox-bench-") as workdir:
        _isolate(workdir)
        setup_logging("WARNING", "text")
        runs: list[tuple[Latency, dict[str, Any], dict[str, Any]]] = []
        for latency in latencies:
            # A fresh database per run (a --db is shared: each run's actions have their own prefix).
            db_url = args.db or f"sqlite+aiosqlite:///{Path(workdir) / f'scrm-{latency.slug}.db'}"
            migrate.upgrade(db_url)
            profile = args.profile
            if profile and len(latencies) > 1:
                path = Path(profile)
                profile = str(path.with_name(f"{path.stem}-{latency.slug}{path.suffix}"))
            print(f"running: {latency.label} ...", file=sys.stderr)
            ran = _one_run(args, db_url, latency, profile)
            if ran is None:
                return 1
            runs.append((latency, *ran))
        _report(args, db_url, runs)
    return 0


def _one_run(args: argparse.Namespace, db_url: str, latency: Latency,
             profile: str | None) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """The sandbox (child) with this latency and the outbox (this process): both reports."""
    ctx = mp.get_context("spawn")
    parent_conn, child_conn = ctx.Pipe()
    stop = ctx.Event()
    proc = ctx.Process(target=sandbox_main, name="bench-sandbox",
                       args=(args.limit_per_minute, args.members, latency.sandbox_kwargs(), child_conn, stop),
                       daemon=True)
    proc.start()
    try:
        if not parent_conn.poll(30):
            print("sandbox did not start", file=sys.stderr)
            return None
        _, port = parent_conn.recv()
        out = asyncio.run(run_outbox(args, db_url, f"http://{HOST}:{port}", profile))
    finally:
        stop.set()
    sb = parent_conn.recv() if parent_conn.poll(30) else None
    proc.join(15)
    if proc.is_alive():
        proc.kill()
    if sb is None:
        print("sandbox did not report", file=sys.stderr)
        return None
    return out, sb


if __name__ == "__main__":
    sys.exit(main())
