"""Radar click benchmark: ``GET /r/{token}`` of the real service vs. a bare aiohttp 302 handler.

Each server runs in its own process on 127.0.0.1; the load generator (this process) drives each
in turn with a closed loop of ``--concurrency`` keep-alive connections for ``--seconds`` after a
1 s warm-up. The service is ``create_app(Runtime(settings), workers=False)`` on a fresh, migrated
SQLite file (or ``--db``) with the repo's playbook (sop/, materials/); every click is committed through the
inbox's group-commit writer before the 302. Afterwards the ``radar.click`` rows are counted: they
must equal the redirects the service answered. Prints redirects/s, p50/p99, the ratio and
whether the goals hold (ratio ≥ 0.8, p99 < 20 ms). Exit status 0 whatever the figures.

    .venv/bin/python -m bench.radar [--seconds 5] [--concurrency 32] [--db URL]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # also runnable as `python bench/radar.py`
    sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
from aiohttp import web  # noqa: E402

MATERIAL_ID = "elderly-fraud-awareness"  # a link material of the shipped playbook


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _settings(db_url: str, root: Path, port: int) -> Any:
    from scrm.config import load_settings
    from scrm.sandbox import SANDBOX_AES_KEY, SANDBOX_CORP_ID, SANDBOX_TOKEN

    wecom = {"corp_id": SANDBOX_CORP_ID, "token": SANDBOX_TOKEN, "encoding_aes_key": SANDBOX_AES_KEY}
    return load_settings(None, database={"url": db_url}, wecom=wecom,
                         playbook={"sop_dir": str(ROOT / "sop"), "materials_dir": str(ROOT / "materials")},
                         server={"public_url": f"http://127.0.0.1:{port}"}, radar={"signing_key": "bench-key"},
                         log={"level": "WARNING", "format": "text"})


def _run_service(db_url: str, root: str, port: int) -> None:
    from scrm.app import Runtime, create_app

    runtime = Runtime(_settings(db_url, Path(root), port))  # the repo's own playbook
    web.run_app(create_app(runtime, workers=False), host="127.0.0.1", port=port, print=None, access_log=None)


def _run_baseline(port: int) -> None:
    from scrm.sop import load_playbook

    playbook = load_playbook(ROOT / "sop", ROOT / "materials")
    link = playbook.materials[MATERIAL_ID].link
    assert link is not None
    target = str(link.url)

    async def bare(_request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound(target)

    app = web.Application()
    app.router.add_get("/r/{token}", bare)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


async def _wait_up(url: str) -> None:
    async with aiohttp.ClientSession() as http:
        for _ in range(300):
            try:
                async with http.get(url, allow_redirects=False):
                    return
            except aiohttp.ClientError:
                await asyncio.sleep(0.05)
    raise RuntimeError(f"{url} did not come up")


async def _load(url: str, seconds: float, concurrency: int) -> tuple[int, int, list[float]]:
    """(redirects in the window, redirects in all, latencies in the window in ms)."""
    lat: list[float] = []
    total = 0
    loop = asyncio.get_running_loop()
    start = loop.time()
    measure_from, deadline = start + 1.0, start + 1.0 + seconds
    conn = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=conn) as http:
        async def worker() -> None:
            nonlocal total
            while loop.time() < deadline:
                t0 = time.perf_counter()
                async with http.get(url, allow_redirects=False) as resp:
                    await resp.read()
                    ok = resp.status == 302
                if ok:
                    total += 1
                    if t0 >= measure_t0:
                        lat.append((time.perf_counter() - t0) * 1000)

        measure_t0 = time.perf_counter() + (measure_from - loop.time())
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return len(lat), total, lat


def _pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(len(s) * p))] if s else float("nan")


async def _count_clicks(db_url: str) -> int:
    from sqlalchemy import func, select

    from scrm.db.engine import make_engine
    from scrm.db.models import InboxEvent

    engine = make_engine(db_url)
    try:
        async with engine.connect() as conn:
            q = select(func.count()).select_from(InboxEvent).where(InboxEvent.event == "radar.click")
            return int((await conn.execute(q)).scalar_one())
    finally:
        await engine.dispose()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--db", help="database URL (default: a fresh SQLite file)")
    args = ap.parse_args(argv)
    from scrm.db import migrate

    with tempfile.TemporaryDirectory() as tmp:
        db_url = args.db or f"sqlite+aiosqlite:///{tmp}/bench.db"
        migrate.upgrade(db_url)
        before = asyncio.run(_count_clicks(db_url))
        ports = {"baseline": _free_port(), "radar": _free_port()}
        ctx = mp.get_context("spawn")
        procs = {"baseline": ctx.Process(target=_run_baseline, args=(ports["baseline"],), daemon=True),
                 "radar": ctx.Process(target=_run_service, args=(db_url, tmp, ports["radar"]), daemon=True)}
        for p in procs.values():
            p.start()
        try:
            from scrm.radar.links import LinkMaker

            link = LinkMaker(_settings(db_url, Path(tmp), ports["radar"])).make_link(
                MATERIAL_ID, "zhangwei", customer="wmBench", occurrence="bench@1")
            results: dict[str, tuple[int, int, list[float]]] = {}
            for name in ("baseline", "radar"):
                url = f"http://127.0.0.1:{ports[name]}/r/{link.rsplit('/', 1)[1]}"
                asyncio.run(_wait_up(url))
                results[name] = asyncio.run(_load(url, args.seconds, args.concurrency))
        finally:
            for p in procs.values():
                p.terminate()
                p.join(5)
        recorded = asyncio.run(_count_clicks(db_url)) - before
    print(f"radar bench: {args.seconds:g} s per server, {args.concurrency} connections, 127.0.0.1")
    rates = {}
    for name, (n, _total, lat) in results.items():
        rates[name] = n / args.seconds
        p50, p99 = _pct(lat, 0.5), _pct(lat, 0.99)
        print(f"  {name:9s} {rates[name]:8.0f} redirects/s  p50 {p50:6.2f} ms  p99 {p99:6.2f} ms")
    ratio = rates["radar"] / rates["baseline"] if rates["baseline"] else 0.0
    p99 = _pct(results["radar"][2], 0.99)
    made = results["radar"][1]
    # Warm-up and wait-up requests are clicks too: count every 302 the service gave.
    print(f"  ratio {ratio:.2f} (goal ≥ 0.8): {'ok' if ratio >= 0.8 else 'MISSED'};"
          f" p99 {p99:.2f} ms (goal < 20 ms): {'ok' if p99 < 20 else 'MISSED'}")
    print(f"  clicks made {made} (+1 probe), recorded {recorded}: "
          f"{'ok' if recorded in (made, made + 1) else 'MISMATCH'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
