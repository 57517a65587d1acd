"""Ingest benchmark: the real callback path (verify, decrypt, group-commit store, ack) against a
baseline that only verifies and decrypts, both over real HTTP on 127.0.0.1.

Three kinds of process, each with its own event loop:

* the **service**: ``create_app(build_runtime(settings), workers=False)`` on a fresh, migrated SQLite
  file in a temporary directory (or ``--db postgresql+asyncpg://...``);
* the **baseline**: an aiohttp app whose ``POST /wecom/callback`` parses the envelope with the
  service's own parser (``parse_xml``: the plain scan, hardened lxml for anything else), runs
  ``WeComCrypto.verify_and_decrypt`` and answers 200 (no storage);
* the **load generator**: pre-generates distinct, validly signed ``add_external_contact``
  callbacks (one ExternalUserID each, so nothing dedups), then drives each server in turn with
  the same closed-loop load (C concurrent keep-alive connections, a warm-up, then a bounded
  measured window).

Afterwards the service's ``inbox_event`` rows of this run are counted and must equal the number
of 200 answers it gave (ack only after commit). Prints a table, the throughput ratio and whether
the goals hold (ratio >= 0.8 and, on SQLite, service p99 < 30 ms). Exit status 0 whatever the
figures; non-zero only when something crashed.

    .venv/bin/python -m bench.ingest [--seconds 10] [--concurrency 64] [--db URL] [--profile FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import dataclasses
import gc
import itertools
import multiprocessing as mp
import os
import platform
import pstats
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Event as MpEvent
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # also runnable as `python bench/ingest.py`
    sys.path.insert(0, str(ROOT))

import aiohttp
from aiohttp import web
from yarl import URL

from bench._proc import log_service_to, system_busy_s
from scrm.adapters.wecom.crypto import CryptoError, WeComCrypto
from scrm.adapters.wecom.events import XmlError, parse_xml
from scrm.kernel.clock import SystemClock
from tests.fakes.wecom_sender import add_contact_xml
from tests.support.processes import proc_cpu_s, until_stopped

# The official test vector's token, key and receive id (same as tests/conftest.py).
TOKEN = "QDG6eK"
AES_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
CORP_ID = "wx5823bf96d3bd56c7"
PATH = "/wecom/callback"
HOST = "127.0.0.1"

RATIO_GOAL = 0.8
P99_GOAL_MS = 30.0


def crypto() -> WeComCrypto:
    return WeComCrypto(TOKEN, AES_KEY, CORP_ID)


# --------------------------------------------------------------------------- servers


async def _serve(app: web.Application, conn: Connection, stop: MpEvent) -> None:
    """Run ``app`` on an ephemeral loopback port until ``stop`` is set or the parent dies."""
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, HOST, 0)
    await site.start()
    port = runner.addresses[0][1]
    if _FREEZE_GC:
        gc.collect()
        gc.freeze()
    conn.send(("ready", port))
    try:
        await until_stopped(stop)
    finally:
        await runner.cleanup()  # the service's cleanup flushes and stops the group-commit writer


def _isolate(workdir: str) -> None:
    # The service reads ./scrm.toml and SCRM_* variables: a benchmark must not pick those up.
    os.chdir(workdir)
    for key in [k for k in os.environ if k.startswith("SCRM_")]:
        del os.environ[key]


def _what_if_executemany() -> None:
    """What-if: the group-commit INSERT as one cached executemany statement (SQLAlchemy's
    insertmanyvalues still sends multi-row INSERT ... RETURNING) instead of ``.values(rows)``,
    which has no cache key and is recompiled for every batch. Patched in this process only."""
    from sqlalchemy.dialects import postgresql, sqlite

    from scrm.kernel.group_commit import GroupCommitWriter

    async def _insert(self: Any, rows: list[Any]) -> set[Any]:
        async with self._engine.begin() as conn:
            mod: Any = postgresql if conn.dialect.name == "postgresql" else sqlite
            col = self._table.c[self._unique]
            stmt = mod.insert(self._table).on_conflict_do_nothing(index_elements=[self._unique]).returning(col)
            result = await conn.execute(stmt, rows)
            return {r[0] for r in result}

    GroupCommitWriter._insert = _insert  # type: ignore[method-assign]


def _what_if_nowrite() -> None:
    """The ``nowrite`` server: the real service with the durable store replaced by a no-op."""
    from scrm.kernel.inbox import Inbox

    async def put_wecom(self: Any, raw_xml: str, header: Any) -> bool:
        return True

    Inbox.put_wecom = put_wecom  # type: ignore[method-assign]


def _what_if_gc_freeze() -> None:
    """What-if: ``gc.freeze()`` once the app is listening, so the collector stops re-scanning the
    long-lived start-up objects (SQLAlchemy, pydantic, aiohttp) on every full collection."""
    global _FREEZE_GC
    _FREEZE_GC = True


_FREEZE_GC = False

WHAT_IFS: dict[str, Callable[[], None]] = {"executemany": _what_if_executemany, "nowrite": _what_if_nowrite,
                                           "gc-freeze": _what_if_gc_freeze}


def service_main(db_url: str, workdir: str, log_mode: str, profile_path: str | None, what_if: list[str],
                 conn: Connection, stop: MpEvent) -> None:
    _isolate(workdir)
    for name in what_if:
        WHAT_IFS[name]()
    from scrm.kernel.http import create_app
    from scrm.main import build_runtime, load_settings

    settings = load_settings(
        None,
        database={"url": db_url},
        wecom={"corp_id": CORP_ID, "token": TOKEN, "encoding_aes_key": AES_KEY, "secret": "bench", "agent_id": 1},
        log={"level": "INFO" if log_mode == "info" else "WARNING", "format": "json"},
    )
    if log_mode != "none":
        log_service_to(Path(workdir) / "service.log", settings.log.level, settings.log.format)

    async def main() -> None:
        # Ingest needs no playbook (SOP YAML), and no handler runs (workers=False): without routers, the
        # start-up check that every handler's playbook is loaded has nothing to refuse.
        runtime = build_runtime(settings, load_playbook=False, routers=[])
        await _serve(create_app(runtime, workers=False), conn, stop)

    if profile_path is None:
        asyncio.run(main())
        return
    prof = cProfile.Profile(time.thread_time)  # CPU of the loop thread: waiting costs nothing
    prof.enable()
    try:
        asyncio.run(main())
    finally:
        prof.disable()
        prof.dump_stats(profile_path)


def baseline_app() -> web.Application:
    c = crypto()

    async def post(request: web.Request) -> web.Response:
        q = request.rel_url.query
        body = await request.read()
        try:
            encrypted = str(parse_xml(body.decode("utf-8")).get("Encrypt") or "")
            c.verify_and_decrypt(q.get("msg_signature", ""), q.get("timestamp", ""), q.get("nonce", ""), encrypted)
        except (CryptoError, XmlError, UnicodeDecodeError) as exc:
            return web.Response(status=400, text=f"{exc}\n")
        return web.Response(status=200, body=b"")

    app = web.Application(client_max_size=64 * 1024)
    app.router.add_post(PATH, post)
    return app


def baseline_main(workdir: str, conn: Connection, stop: MpEvent) -> None:
    _isolate(workdir)
    asyncio.run(_serve(baseline_app(), conn, stop))


# --------------------------------------------------------------------------- load generator


@dataclasses.dataclass
class PhaseResult:
    ok: int = 0
    statuses: Counter[int] = dataclasses.field(default_factory=Counter)
    exceptions: Counter[str] = dataclasses.field(default_factory=Counter)
    latencies: list[float] = dataclasses.field(default_factory=list)
    elapsed: float = 0.0
    exhausted: bool = False
    server_cpu_s: float | None = None
    client_cpu_s: float = 0.0
    system_cpu_s: float | None = None  # every process on the machine, this benchmark included

    @property
    def errors(self) -> int:
        return sum(self.statuses.values()) + sum(self.exceptions.values())


@dataclasses.dataclass
class Target:
    name: str
    port: int
    pid: int
    distinct: bool  # the service must never see the same callback twice (it would dedup)


def make_requests(n: int, run_tag: str) -> list[tuple[str, bytes]]:
    """``n`` distinct, validly signed callbacks: (path with query, body)."""
    c = crypto()
    ts = str(int(SystemClock().now().timestamp()))  # the bench plays WeCom: real time
    out: list[tuple[str, bytes]] = []
    for i in range(n):
        nonce = f"{i:010d}"
        body, sig = c.envelope(add_contact_xml(f"wmb{run_tag}x{i}", create_time=int(ts)), ts, nonce)
        out.append((f"{PATH}?msg_signature={sig}&timestamp={ts}&nonce={nonce}", body.encode()))
    return out


async def _phase(session: aiohttp.ClientSession, urls: list[URL], bodies: list[bytes], indices: Iterator[int],
                 concurrency: int, seconds: float, timing: bool, target_pid: int) -> PhaseResult:
    res = PhaseResult()
    loop = asyncio.get_running_loop()
    headers = {"Content-Type": "text/xml"}
    start = loop.time()
    deadline = start + seconds
    cpu0 = proc_cpu_s(target_pid)
    own0 = time.process_time()
    sys0 = system_busy_s()

    async def worker() -> None:
        while loop.time() < deadline:  # bounded: no new request after the deadline
            i = next(indices, None)
            if i is None:
                res.exhausted = True
                return
            t0 = time.perf_counter()
            try:
                async with session.post(urls[i], data=bodies[i], headers=headers) as resp:
                    await resp.read()
                    status = resp.status
            except (aiohttp.ClientError, TimeoutError) as exc:
                res.exceptions[type(exc).__name__] += 1
                continue
            if timing:
                res.latencies.append(time.perf_counter() - t0)
            if status == 200:
                res.ok += 1
            else:
                res.statuses[status] += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    res.elapsed = loop.time() - start  # includes finishing the requests in flight at the deadline
    cpu1 = proc_cpu_s(target_pid)
    res.server_cpu_s = cpu1 - cpu0 if cpu0 is not None and cpu1 is not None else None
    res.client_cpu_s = time.process_time() - own0
    sys1 = system_busy_s()
    res.system_cpu_s = sys1 - sys0 if sys0 is not None and sys1 is not None else None
    return res


async def _drive(targets: list[Target], n: int, run_tag: str, concurrency: int, warmup: float, seconds: float,
                 timeout_s: float, pause_s: float, conn: Connection) -> None:
    t0 = time.perf_counter()
    reqs = make_requests(n, run_tag)
    paths = [p for p, _ in reqs]
    bodies = [b for _, b in reqs]
    del reqs
    conn.send(("generated", n, time.perf_counter() - t0))
    for i, t in enumerate(targets):
        if i:
            await asyncio.sleep(pause_s)
        # Parsed URLs are built before the timed phases, so the client does not parse them under load.
        urls = [URL(f"http://{HOST}:{t.port}{p}", encoded=True) for p in paths]
        indices: Iterator[int] = iter(range(n)) if t.distinct else itertools.cycle(range(n))
        connector = aiohttp.TCPConnector(limit=concurrency, limit_per_host=concurrency)
        async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=timeout_s)) as s:
            warm = await _phase(s, urls, bodies, indices, concurrency, warmup, False, t.pid)
            main = await _phase(s, urls, bodies, indices, concurrency, seconds, True, t.pid)
        conn.send(("result", t.name, warm, main))
        del urls


def load_main(targets: list[Target], n: int, run_tag: str, concurrency: int, warmup: float, seconds: float,
              timeout_s: float, pause_s: float, conn: Connection) -> None:
    asyncio.run(_drive(targets, n, run_tag, concurrency, warmup, seconds, timeout_s, pause_s, conn))
    conn.send(("done",))


# --------------------------------------------------------------------------- orchestration


async def _count_rows(db_url: str, run_tag: str) -> tuple[int, int]:
    """(rows of this run, all rows) in inbox_event."""
    from sqlalchemy import text

    from scrm.adapters.db.engine import make_engine

    engine = make_engine(db_url)
    try:
        async with engine.connect() as c:
            mine = await c.scalar(text("SELECT count(*) FROM inbox_event WHERE dedup_key LIKE :p"),
                                  {"p": f"%ExternalUserID=wmb{run_tag}x%"})
            total = await c.scalar(text("SELECT count(*) FROM inbox_event"))
        return int(mine or 0), int(total or 0)
    finally:
        await engine.dispose()


def _pct(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    k = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[k] * 1000


def _recv(conn: Connection, timeout: float, what: str, alive: Callable[[], bool]) -> Any:
    deadline = time.monotonic() + timeout
    while not conn.poll(0.2):
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        if not alive():
            raise RuntimeError(f"process died while waiting for {what}")
    return conn.recv()


def _stop(procs: list[tuple[mp.process.BaseProcess, MpEvent | None]]) -> None:
    for _, ev in procs:
        if ev is not None:
            ev.set()
    for p, _ in procs:
        p.join(15)
        if p.is_alive():
            p.terminate()
            p.join(5)
        if p.is_alive():
            p.kill()
            p.join(5)


def _loadavg() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


def _print_profile(path: str, limit: int) -> None:
    for key in ("tottime", "cumulative"):
        print(f"\n--- service profile, top {limit} by {key} ({path}) ---")
        stats = pstats.Stats(path, stream=sys.stdout)
        stats.strip_dirs().sort_stats(key).print_stats(limit)


def run(args: argparse.Namespace) -> int:
    ctx = mp.get_context("spawn")
    run_tag = uuid.uuid4().hex[:8]
    n = args.requests or int((args.warmup + args.seconds) * args.max_rate)
    print(f"ingest benchmark  run={run_tag}  python {platform.python_version()}  aiohttp {aiohttp.__version__}  "
          f"cpus={os.cpu_count()}  loadavg(before)={_loadavg()}")
    print("note: load generator, service and baseline share this machine's cores; other engineers' tests may be "
          "running at the same time, so absolute figures are indicative (compare the ratio).")
    procs: list[tuple[mp.process.BaseProcess, MpEvent | None]] = []
    with tempfile.TemporaryDirectory(prefix="scrm-bench-") as workdir:
        db_url = args.db or f"sqlite+aiosqlite:///{Path(workdir) / 'bench.db'}"
        is_sqlite = db_url.startswith("sqlite")
        from scrm.adapters.db import migrate

        migrate.upgrade(db_url)
        print(f"database: {'SQLite (fresh file, WAL, synchronous=NORMAL)' if is_sqlite else db_url.split('@')[-1]}  "
              f"service logging: {args.service_log}  concurrency={args.concurrency}  "
              f"warmup={args.warmup}s  measured={args.seconds}s each  pool={n} distinct callbacks")
        if args.what_if:
            print(f"WHAT-IF patches applied inside the service process (not the committed code): "
                  f"{', '.join(args.what_if)}")
        # name -> (entry point, arguments before (conn, stop), must every request be new)
        specs: dict[str, tuple[Callable[..., None], tuple[Any, ...], bool]] = {
            "baseline": (baseline_main, (workdir,), False),
            "service": (service_main, (db_url, workdir, args.service_log, args.profile, args.what_if), True),
        }
        if args.nowrite:
            specs["nowrite"] = (service_main, (db_url, workdir, args.service_log, None, [*args.what_if, "nowrite"]),
                                False)
        order = ["baseline", "nowrite", "service"] if args.nowrite else ["baseline", "service"]
        if args.service_first:
            order.reverse()
        try:
            pending = []
            for name in order:
                entry, entry_args, distinct = specs[name]
                parent_end, child_end = ctx.Pipe()
                stop_ev = ctx.Event()
                proc = ctx.Process(target=entry, name=f"bench-{name}", args=(*entry_args, child_end, stop_ev))
                proc.start()
                procs.append((proc, stop_ev))
                pending.append((name, proc, parent_end, distinct))
            targets = []
            for name, proc, parent_end, distinct in pending:
                _, port = _recv(parent_end, 60, f"the {name} server to listen", proc.is_alive)
                assert proc.pid is not None
                targets.append(Target(name, port, proc.pid, distinct))
            load_parent, load_child = ctx.Pipe()
            load = ctx.Process(target=load_main, name="bench-load",
                               args=(targets, n, run_tag, args.concurrency, args.warmup, args.seconds,
                                     args.timeout, 1.0, load_child))
            load.start()
            procs.append((load, None))
            msg = _recv(load_parent, 300, "request generation", load.is_alive)
            print(f"generated {msg[1]} callbacks in {msg[2]:.1f}s")
            results: dict[str, tuple[PhaseResult, PhaseResult]] = {}
            per_target = args.warmup + args.seconds + args.timeout + 30
            for _ in targets:
                msg = _recv(load_parent, per_target, "load results", load.is_alive)
                results[msg[1]] = (msg[2], msg[3])
            _recv(load_parent, 30, "load generator exit", load.is_alive)
        finally:
            _stop(list(reversed(procs)))
        for p, _ in procs:
            if p.exitcode not in (0, None):
                print(f"WARNING: {p.name} exited with {p.exitcode}")
        crashed = [p.name for p, _ in procs if p.exitcode != 0]
        if crashed:
            raise RuntimeError(f"process(es) exited with an error: {', '.join(crashed)}")

        mine, total = asyncio.run(_count_rows(db_url, run_tag))
        acked = results["service"][0].ok + results["service"][1].ok
        print(f"loadavg(after)={_loadavg()}")
        _report(results, is_sqlite)
        ok = mine == acked
        print(f"durability: service acknowledged {acked} callbacks (warm-up + measured) with 200; inbox_event holds "
              f"{mine} rows of this run ({total} in total) -> {'OK' if ok else 'MISMATCH'}")
        if not ok:
            print("  (a mismatch means an acknowledged event was lost, or a request that timed out client-side "
                  "was stored without its 200 being seen)")
        if args.profile:
            _print_profile(args.profile, args.profile_lines)
    return 0


def _report(results: dict[str, tuple[PhaseResult, PhaseResult]], is_sqlite: bool) -> None:
    print()
    print(f"{'server':<10} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'errors':>7} "
          f"{'server cpu':>10} {'cpu us/req':>10} {'client cpu':>10} {'other cpu':>9}  notes")
    rps: dict[str, float] = {}
    cost: dict[str, float] = {}  # server CPU microseconds per answered request
    p99: dict[str, float] = {}
    for name in [n for n in ("baseline", "nowrite", "service") if n in results]:
        warm, main = results[name]
        lat = sorted(main.latencies)
        rps[name] = main.ok / main.elapsed if main.elapsed else 0.0
        p99[name] = _pct(lat, 0.99)
        notes = []
        if main.exhausted:
            notes.append("request pool exhausted early (raise --requests/--max-rate)")
        if main.statuses:
            notes.append("statuses " + ", ".join(f"{k}x{v}" for k, v in sorted(main.statuses.items())))
        if main.exceptions:
            notes.append("exceptions " + ", ".join(f"{k}x{v}" for k, v in main.exceptions.most_common()))
        if warm.errors:
            notes.append(f"{warm.errors} errors in warm-up")
        scpu = f"{100 * main.server_cpu_s / main.elapsed:.0f}%" if main.server_cpu_s is not None else "?"
        answered = main.ok + sum(main.statuses.values())
        if main.server_cpu_s is not None and answered:
            cost[name] = 1e6 * main.server_cpu_s / answered
        per_req = f"{cost[name]:.0f}" if name in cost else "?"
        ccpu = f"{100 * main.client_cpu_s / main.elapsed:.0f}%"
        if main.system_cpu_s is not None and main.server_cpu_s is not None:
            other = main.system_cpu_s - main.server_cpu_s - main.client_cpu_s
            ocpu = f"{max(0.0, 100 * other / main.elapsed):.0f}%"
        else:
            ocpu = "?"
        print(f"{name:<10} {rps[name]:>9.0f} {_pct(lat, 0.5):>8.1f} {p99[name]:>8.1f} {_pct(lat, 1.0):>8.1f} "
              f"{main.errors:>7} {scpu:>10} {per_req:>10} {ccpu:>10} {ocpu:>9}  {'; '.join(notes)}")
    ratio = rps["service"] / rps["baseline"] if rps["baseline"] else float("nan")
    print()
    if rps.get("nowrite"):
        print(f"nowrite = the service with Inbox.put_wecom replaced by a no-op (same verify/parse/log path, no "
              f"database): service/nowrite = {rps['service'] / rps['nowrite']:.2f}, "
              f"nowrite/baseline = {rps['nowrite'] / rps['baseline']:.2f}")
    ratio_ok = ratio >= RATIO_GOAL
    if "service" in cost and "baseline" in cost:
        # Robust to other load on the machine: when each server saturates a core, throughput is the inverse of
        # its CPU cost per request, so this is what the ratio would be on an otherwise idle machine.
        print(f"CPU-cost ratio baseline/service = {cost['baseline'] / cost['service']:.2f}  "
              f"({cost['baseline']:.0f} vs {cost['service']:.0f} us of server CPU per request; an estimate of the "
              f"throughput ratio on an idle machine, less sensitive to other load)")
    print(f"throughput ratio service/baseline = {ratio:.2f}  "
          f"(goal >= {RATIO_GOAL}: {'MET' if ratio_ok else 'NOT MET'})")
    if is_sqlite:
        p99_ok = p99["service"] < P99_GOAL_MS
        print(f"service p99 = {p99['service']:.1f} ms  (goal < {P99_GOAL_MS:.0f} ms on SQLite: "
              f"{'MET' if p99_ok else 'NOT MET'})")
        print(f"goals: {'all met' if ratio_ok and p99_ok else 'NOT all met'}")
    else:
        print(f"service p99 = {p99['service']:.1f} ms  (the p99 goal is defined for SQLite only)")
    print("(cpu columns: CPU time of the server process, of the load generator and of everything else on the "
          "machine (other engineers' jobs, the idle servers, the kernel's share), / wall time of the measured "
          "window, 100% = one core; cpu us/req = server CPU time / answered requests)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.ingest", description=__doc__.split("\n\n")[0] if __doc__ else "")
    ap.add_argument("--seconds", type=float, default=10.0, help="measured window per server (default 10)")
    ap.add_argument("--warmup", type=float, default=1.0, help="warm-up per server before measuring (default 1)")
    ap.add_argument("--concurrency", type=int, default=64, help="concurrent client connections (default 64)")
    ap.add_argument("--db", default=None, help="database URL for the service (default: fresh SQLite file); "
                                               "a PostgreSQL database is migrated and keeps the rows")
    ap.add_argument("--requests", type=int, default=0,
                    help="distinct callbacks to pre-generate (default (warmup+seconds) * --max-rate)")
    ap.add_argument("--max-rate", type=float, default=15000.0,
                    help="req/s the pool is sized for when --requests is not given (default 15000)")
    ap.add_argument("--timeout", type=float, default=30.0, help="per-request client timeout in s (default 30)")
    ap.add_argument("--service-log", choices=("info", "warning", "none"), default="info",
                    help="service logging: info = like `scrm serve` (JSON lines, to a temp file; default), "
                         "warning = only warnings, none = logging not configured")
    ap.add_argument("--service-first", action="store_true", help="drive the service before the baseline")
    ap.add_argument("--profile", metavar="FILE", default=None,
                    help="run the service under cProfile (main thread only), dump stats to FILE and print the top")
    ap.add_argument("--profile-lines", type=int, default=25)
    ap.add_argument("--nowrite", action="store_true",
                    help="also drive a third server: the service with its durable store replaced by a no-op, "
                         "which separates the cost of parsing/logging from the cost of the write")
    ap.add_argument("--what-if", action="append", default=[], choices=[k for k in WHAT_IFS if k != "nowrite"],
                    help="monkeypatch a suggested change into the service process, to measure it before making it")
    args = ap.parse_args(argv)
    if args.seconds <= 0 or args.concurrency < 1 or args.warmup < 0:
        ap.error("--seconds and --concurrency must be positive, --warmup non-negative")
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
