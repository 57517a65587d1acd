"""Instructions per callback, server side, under ``valgrind --tool=callgrind``: a figure the
machine's other load does not move (``bench.ingest``'s CPU µs do).

Each server of ``bench.ingest`` (the baseline, the service without its durable write, the
service) runs alone in a process under callgrind, on a fresh migrated SQLite file; this process
then sends it ``--warmup`` callbacks, zeroes the counters (``callgrind_control -z``), sends
``--requests`` distinct, validly signed ``add_external_contact`` callbacks over ``--concurrency``
keep-alive connections, dumps the counters (``callgrind_control -d``) and divides their total by
the requests. Nothing but the server's own instructions between the zero and the dump is counted
(its group-commit batches included); a server runs some 50 times slower under valgrind, so the
batches are larger than at full speed.

    .venv/bin/python -m bench.ingest_instructions [--servers baseline,nowrite,service] [--requests 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import aiohttp
from aiohttp import web
from yarl import URL

from bench import ingest

SERVERS = ("baseline", "nowrite", "service")


# --------------------------------------------------------------------------- the server (under valgrind)


async def _serve(server: str, db_url: str, workdir: Path) -> None:
    if server == "baseline":
        app = ingest.baseline_app()
    else:
        if server == "nowrite":
            ingest.WHAT_IFS["nowrite"]()
        from bench._proc import log_service_to
        from scrm.kernel.http import create_app
        from scrm.main import build_runtime, load_settings

        settings = load_settings(
            None, database={"url": db_url}, log={"level": "INFO", "format": "json"},
            wecom={"corp_id": ingest.CORP_ID, "token": ingest.TOKEN, "encoding_aes_key": ingest.AES_KEY,
                   "secret": "bench", "agent_id": 1})
        log_service_to(workdir / "service.log", settings.log.level, settings.log.format)  # like bench.ingest
        app = create_app(build_runtime(settings, load_playbook=False, routers=[]), workers=False)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, ingest.HOST, 0)
    await site.start()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    (workdir / "port").write_text(str(runner.addresses[0][1]))
    await stop.wait()
    await runner.cleanup()


# --------------------------------------------------------------------------- the driver (this process)


def _callgrind_control(flag: str, pid: int) -> None:
    subprocess.run(["callgrind_control", flag, str(pid)], check=True, stdout=subprocess.DEVNULL)


async def _drive(port: int, pid: int, warmup: int, requests: int, concurrency: int) -> None:
    calls = ingest.make_requests(warmup + requests, f"i{os.getpid()}")
    urls = [URL(f"http://{ingest.HOST}:{port}{path}", encoded=True) for path, _ in calls]
    bodies = [body for _, body in calls]
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def send(indices: range) -> None:
            pending = iter(indices)

            async def worker() -> None:
                for i in pending:
                    async with session.post(urls[i], data=bodies[i], headers={"Content-Type": "text/xml"}) as resp:
                        await resp.read()
                        if resp.status != 200:
                            raise RuntimeError(f"callback {i} answered {resp.status}")

            await asyncio.gather(*(worker() for _ in range(concurrency)))

        await send(range(warmup))
        await asyncio.to_thread(_callgrind_control, "-z", pid)
        await send(range(warmup, warmup + requests))
        await asyncio.to_thread(_callgrind_control, "-d", pid)


def _total_instructions(dump: Path) -> int:
    for line in dump.read_text().splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    raise RuntimeError(f"{dump} holds no total")


def measure(server: str, args: argparse.Namespace) -> int:
    """Instructions per callback of one server."""
    from scrm.adapters.db import migrate

    with tempfile.TemporaryDirectory(prefix="scrm-instr-") as tmp:
        workdir = Path(tmp)
        db_url = f"sqlite+aiosqlite:///{workdir / 'bench.db'}"
        migrate.upgrade(db_url)
        out = workdir / "callgrind.out"
        proc = subprocess.Popen(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable, "-m",
             "bench.ingest_instructions", "--serve", server, "--db", db_url, "--workdir", str(workdir)],
            cwd=ROOT, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 300
            while not (workdir / "port").exists() or not (workdir / "port").read_text():
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the {server} server did not start under valgrind")
                time.sleep(0.5)
            port = int((workdir / "port").read_text())
            asyncio.run(_drive(port, proc.pid, args.warmup, args.requests, args.concurrency))
        finally:
            proc.terminate()
            try:
                proc.wait(120)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if args.keep:
            # The dump, for callgrind_annotate: where the instructions of the measured callbacks went.
            Path(args.keep).mkdir(parents=True, exist_ok=True)
            (Path(args.keep) / f"callgrind.{server}").write_bytes(Path(f"{out}.1").read_bytes())
        return _total_instructions(Path(f"{out}.1")) // int(args.requests)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.ingest_instructions",
                                 description=__doc__.split("\n\n")[0] if __doc__ else "")
    ap.add_argument("--servers", default=",".join(SERVERS), help="comma-separated, of " + ", ".join(SERVERS))
    ap.add_argument("--requests", type=int, default=1000, help="measured callbacks per server (default 1000)")
    ap.add_argument("--warmup", type=int, default=200, help="callbacks before the counters are zeroed (default 200)")
    ap.add_argument("--concurrency", type=int, default=32, help="keep-alive connections (default 32)")
    ap.add_argument("--keep", metavar="DIR", help="copy each server's dump to DIR/callgrind.SERVER")
    ap.add_argument("--serve", choices=SERVERS, help=argparse.SUPPRESS)  # the server process itself
    ap.add_argument("--db", help=argparse.SUPPRESS)
    ap.add_argument("--workdir", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.serve:
        ingest._isolate(args.workdir)
        asyncio.run(_serve(args.serve, args.db, Path(args.workdir)))
        return 0
    servers = [s for s in args.servers.split(",") if s]
    unknown = sorted(set(servers) - set(SERVERS))
    if unknown or args.requests < 1 or args.warmup < 0 or args.concurrency < 1:
        ap.error(f"unknown server {unknown[0]}" if unknown else "--requests/--concurrency must be positive")
    figures = {server: measure(server, args) for server in servers}
    for server, per_request in figures.items():
        print(f"{server:<10} {per_request:>10,} instructions per callback")
    if "baseline" in figures and "service" in figures:
        print(f"CPU-cost ratio baseline/service (instructions) = {figures['baseline'] / figures['service']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
