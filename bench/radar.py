"""Radar click benchmark: ``GET /r/{token}`` of the real service vs. a bare aiohttp 302 handler.

Each server runs in its own process on 127.0.0.1; the load generator (this process) drives them
with a closed loop of ``--concurrency`` keep-alive connections. After a 1 s warm-up of each, the
measured time is cut into ``--rounds`` slices that alternate between the two servers (baseline
first in even rounds, radar first in odd ones): on a shared, busy machine the load of the
neighbours then weighs on both alike, instead of on whichever server happened to run second.

The service is ``create_app(build_runtime(settings), workers=False)`` on a fresh, migrated SQLite file
(or ``--db``) with the repo's playbook (sop/, materials/); every click is queued for the inbox's
group-commit writer and the 302 does not wait for its commit (scrm/radar/views.py says why). The
baseline builds its 302 the same way (a returned response, no exception), so the ratio prices
only the radar's own work. Both servers are then stopped gracefully (SIGTERM: aiohttp's
shutdown, then the service's cleanup flushes the writer) and the ``radar.click`` rows are
counted: they must equal the redirects the service answered. A request that failed after it
was sent (the connection reset or closed) has an unknown fate: the service may have recorded its
click without the 302 arriving. Those are counted apart, and aiohttp's silent retry of such a GET
is turned off (it would record a second click for one 302 seen); recorded clicks between the 302s
and the 302s plus the unknown ones are ok, fewer is a lost click.

Prints redirects/s, p50/p99, server CPU µs per redirect (Linux), the ratio and whether the goals
hold (ratio ≥ 0.8, p99 < 20 ms). Exit status 0 whatever the figures.

    .venv/bin/python -m bench.radar [--seconds 5] [--rounds 5] [--concurrency 32] [--db URL]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import socket
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # also runnable as `python bench/radar.py`
    sys.path.insert(0, str(ROOT))

import aiohttp
from aiohttp import web

from tests.support.processes import proc_cpu_s

MATERIAL_ID = "elderly-fraud-awareness"  # a link material of the shipped playbook
NAMES = ("baseline", "radar")


@dataclass
class Tally:
    """One server's measured slices, added up."""

    seconds: float = 0.0
    redirects: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    cpu_s: float | None = 0.0


@dataclass
class Made:
    """The radar service's clicks as the client saw them: 302s, and requests of unknown fate."""

    redirects: int = 0
    unknown: int = 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _settings(db_url: str, port: int) -> Any:
    from scrm.main import load_settings
    from scrm.sandbox import SANDBOX_AES_KEY, SANDBOX_CORP_ID, SANDBOX_TOKEN

    wecom = {"corp_id": SANDBOX_CORP_ID, "token": SANDBOX_TOKEN, "encoding_aes_key": SANDBOX_AES_KEY}
    return load_settings(None, database={"url": db_url}, wecom=wecom,
                         playbook={"sop_dir": str(ROOT / "sop"), "materials_dir": str(ROOT / "materials")},
                         server={"public_url": f"http://127.0.0.1:{port}"}, radar={"signing_key": "bench-key"},
                         log={"level": "WARNING", "format": "text"})


def _run_service(db_url: str, port: int) -> None:
    from scrm.kernel.http import create_app
    from scrm.main import build_runtime

    runtime = build_runtime(_settings(db_url, port))  # the repo's own playbook
    web.run_app(create_app(runtime, workers=False), host="127.0.0.1", port=port, print=None, access_log=None)


def _run_baseline(port: int) -> None:
    from scrm.kernel.clock import SystemClock
    from scrm.playbook import load_playbook

    playbook = load_playbook(ROOT / "sop", ROOT / "materials", today=SystemClock().now())
    link = playbook.materials[MATERIAL_ID].link
    assert link is not None
    target = str(link.url)

    async def bare(_request: web.Request) -> web.StreamResponse:
        return web.Response(status=302, headers={"Location": target})

    app = web.Application()
    app.router.add_get("/r/{token}", bare)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


async def _wait_up(http: aiohttp.ClientSession, url: str, made: Made) -> None:
    """Wait until ``url`` answers (its 302 is a click, added to ``made``)."""
    for _ in range(600):
        try:
            async with http.get(url, allow_redirects=False) as resp:
                await resp.read()
                made.redirects += resp.status == 302
                return
        except aiohttp.ClientConnectorError:  # not listening yet: nothing reached the service
            await asyncio.sleep(0.05)
        except aiohttp.ClientError:  # sent, then failed: the service may have recorded it
            made.unknown += 1
            await asyncio.sleep(0.05)
    raise RuntimeError(f"{url} did not come up")


async def _slice(http: aiohttp.ClientSession, url: str, seconds: float, concurrency: int,
                 latencies: list[float] | None, made: Made) -> int:
    """A closed loop for ``seconds``: 302s answered (no request starts after the deadline); failed
    requests are added to ``made.unknown``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    done = 0

    async def worker() -> None:
        nonlocal done
        while loop.time() < deadline:
            t0 = time.perf_counter()
            try:
                async with http.get(url, allow_redirects=False) as resp:
                    await resp.read()
                    ok = resp.status == 302
            except aiohttp.ClientError:
                made.unknown += 1
                continue
            if ok:
                done += 1
                if latencies is not None:
                    latencies.append((time.perf_counter() - t0) * 1000)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return done


async def _drive(urls: dict[str, str], pids: dict[str, int | None], seconds: float, rounds: int,
                 concurrency: int) -> tuple[dict[str, Tally], Made]:
    """(per-server tallies, every click the radar service was asked for, warm-up and probe included)."""
    tallies = {name: Tally() for name in NAMES}
    made = {name: Made() for name in NAMES}
    conn = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=conn) as http:
        # aiohttp re-sends a GET once, silently, when a reused connection fails: the service would
        # record two clicks for the one 302 counted here. A failure must show as one, not be hidden.
        http._retry_connection = False
        for name in NAMES:
            await _wait_up(http, urls[name], made[name])
            made[name].redirects += await _slice(http, urls[name], 1.0, concurrency, None, made[name])
        for r in range(rounds):
            for name in NAMES if r % 2 == 0 else NAMES[::-1]:
                t = tallies[name]
                cpu0, t0 = proc_cpu_s(pids[name]), time.perf_counter()
                n = await _slice(http, urls[name], seconds / rounds, concurrency, t.latencies_ms, made[name])
                cpu1, t.seconds = proc_cpu_s(pids[name]), t.seconds + time.perf_counter() - t0
                t.redirects += n
                made[name].redirects += n
                t.cpu_s = None if None in (cpu0, cpu1, t.cpu_s) else t.cpu_s + cpu1 - cpu0  # type: ignore[operator]
    return tallies, made["radar"]


def _pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(len(s) * p))] if s else float("nan")


async def _count_clicks(db_url: str) -> int:
    from sqlalchemy import func, select

    from scrm.adapters.db.engine import make_engine
    from scrm.kernel.models import InboxEvent

    engine = make_engine(db_url)
    try:
        async with engine.connect() as conn:
            q = select(func.count()).select_from(InboxEvent).where(InboxEvent.event == "radar.click")
            return int((await conn.execute(q)).scalar_one())
    finally:
        await engine.dispose()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--seconds", type=float, default=5.0, help="measured seconds per server")
    ap.add_argument("--rounds", type=int, default=5, help="alternating slices the seconds are cut into")
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--db", help="database URL (default: a fresh SQLite file)")
    args = ap.parse_args(argv)
    from handlers.radar.links import LinkMaker
    from scrm.adapters.db import migrate

    with tempfile.TemporaryDirectory() as tmp:
        db_url = args.db or f"sqlite+aiosqlite:///{tmp}/bench.db"
        migrate.upgrade(db_url)
        before = asyncio.run(_count_clicks(db_url))
        ports = {"baseline": _free_port(), "radar": _free_port()}
        ctx = mp.get_context("spawn")
        procs = {"baseline": ctx.Process(target=_run_baseline, args=(ports["baseline"],), daemon=True),
                 "radar": ctx.Process(target=_run_service, args=(db_url, ports["radar"]), daemon=True)}
        for p in procs.values():
            p.start()
        try:
            link = LinkMaker(_settings(db_url, ports["radar"])).make_link(
                MATERIAL_ID, "zhangwei", customer="wmBench", occurrence="bench@1")
            token = link.rsplit("/", 1)[1]
            urls = {name: f"http://127.0.0.1:{ports[name]}/r/{token}" for name in NAMES}
            tallies, made = asyncio.run(_drive(urls, {n: p.pid for n, p in procs.items()}, args.seconds,
                                               args.rounds, args.concurrency))
        finally:
            for p in procs.values():
                p.terminate()  # SIGTERM: a graceful stop, which flushes the click queue
                p.join(30)
        graceful = procs["radar"].exitcode == 0
        recorded = asyncio.run(_count_clicks(db_url)) - before
    print(f"radar bench: {args.seconds:g} s per server in {args.rounds} alternating rounds, "
          f"{args.concurrency} connections, 127.0.0.1")
    rates: dict[str, float] = {}
    for name, t in tallies.items():
        rates[name] = t.redirects / t.seconds if t.seconds else 0.0
        cpu = f"{t.cpu_s / t.redirects * 1e6:5.0f} µs CPU/redirect" if t.cpu_s is not None and t.redirects else ""
        print(f"  {name:9s} {rates[name]:8.0f} redirects/s  p50 {_pct(t.latencies_ms, 0.5):6.2f} ms"
              f"  p99 {_pct(t.latencies_ms, 0.99):6.2f} ms  {cpu}")
    ratio = rates["radar"] / rates["baseline"] if rates["baseline"] else 0.0
    p99 = _pct(tallies["radar"].latencies_ms, 0.99)
    print(f"  ratio {ratio:.2f} (goal ≥ 0.8): {'ok' if ratio >= 0.8 else 'MISSED'};"
          f" p99 {p99:.2f} ms (goal < 20 ms): {'ok' if p99 < 20 else 'MISSED'}")
    stop = "graceful stop" if graceful else f"service exit code {procs['radar'].exitcode}: NOT a graceful stop"
    unknown = f" (+ {made.unknown} failed requests, recorded or not)" if made.unknown else ""
    ok = made.redirects <= recorded <= made.redirects + made.unknown
    verdict = "ok" if ok else ("MISMATCH: clicks lost" if recorded < made.redirects else "MISMATCH")
    print(f"  clicks made {made.redirects}{unknown}, recorded {recorded} after a {stop}: {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
