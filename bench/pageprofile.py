"""Where one page's time goes, in-process: its SQL statements (count, each one's time), the
service's CPU per request, and a ``cProfile`` of the handlers.

    .venv/bin/python -m bench.pageprofile /sidebar/customer/wm00000123 --as m00300 [--times 20] [--profile out.prof]
    .venv/bin/python -m bench.pageprofile "/console/cockpit?days=30" --as ops01 --role ops_admin --times 3

The service is the benches' own (``bench.console.service_settings``: the repo's playbook, a
FakeClock at the data set's anchor) built in this process on ``--db`` (the 1,000,000-customer data
set by default, see ``bench._million``); requests go through aiohttp's test client, one at a
time, after one untimed warm-up request. The CPU of a request is this process's CPU between the
outermost middleware's start and end: with one request at a time nothing else runs in the loop,
so it is the service's own (the test client's parsing is outside it). Statement times are the
driver's, from SQLAlchemy's cursor events (a statement's wall time, PostgreSQL's work included).
Robust to a loaded machine in a way a p95 is not.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import itertools
import pstats
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # also runnable as `python bench/pageprofile.py`
    sys.path.insert(0, str(ROOT))

from bench import _million as million
from bench._pg import bench_postgres_url
from bench.console import BASELINE, Person, access_file, service_settings, sign_in


class Statements:
    """Each statement's wall time, by its first 110 characters, from SQLAlchemy's cursor events."""

    def __init__(self) -> None:
        self.times: dict[str, list[float]] = defaultdict(list)
        self._started: list[float] = []

    def before(self, *_a: Any, **_k: Any) -> None:
        self._started.append(time.perf_counter())

    def after(self, _conn: Any, _cursor: Any, statement: str, *_a: Any, **_k: Any) -> None:
        self.times[" ".join(statement.split())[:110]].append(time.perf_counter() - self._started.pop())

    def count(self) -> int:
        return sum(len(v) for v in self.times.values())


async def run(db_url: str, path: str, person: Person, times: int, profile: str | None, top: int,
              each_dept: bool = False, first_top: int = 0) -> None:
    from aiohttp import web
    from aiohttp.test_utils import TestClient, TestServer
    from sqlalchemy import event, text

    from scrm.kernel.clock import FakeClock
    from scrm.kernel.http import create_app
    from scrm.main import build_runtime

    work = Path(tempfile.mkdtemp(prefix="bench-pageprofile-"))
    access = work / "console.yaml"
    access.write_text(access_file([person] if person.role else []), encoding="utf-8")
    runtime = build_runtime(service_settings(db_url, 8080, access), clock=FakeClock(million.ANCHOR))
    app = create_app(runtime, workers=False)
    cpu: list[float] = []

    @web.middleware
    async def cpu_meter(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                        ) -> web.StreamResponse:
        start = time.process_time()
        try:
            return await handler(request)
        finally:
            cpu.append(time.process_time() - start)

    app.middlewares.insert(0, cpu_meter)

    async def baseline(_request: web.Request) -> web.Response:
        async with runtime.sessions() as db:
            await db.scalar(text("SELECT 1"))
        return web.Response(text="ok")

    app.router.add_get(BASELINE, baseline)
    cookie = (await sign_in(db_url, [person], "sidebar" if path.startswith("/sidebar") else "console"))[person.userid]
    stmts = Statements()
    event.listen(runtime.engine.sync_engine, "before_cursor_execute", stmts.before)
    event.listen(runtime.engine.sync_engine, "after_cursor_execute", stmts.after)
    headers = {"Cookie": cookie}
    paths = [path]
    if each_dept:
        async with runtime.sessions() as db:
            departments = (await db.scalars(text("SELECT DISTINCT department FROM member"))).all()
        prefixes = {"/".join(d.split("/")[:i + 1]) for d in departments if d for i in range(d.count("/") + 1)}
        joiner = "&" if "?" in path else "?"
        paths = [f"{path}{joiner}dept={quote(d)}" for d in sorted(prefixes, key=lambda d: (-d.count("/"), d))]
        if len(paths) < 2 * times + 1:
            raise SystemExit(f"--each-dept: {len(paths)} departments, {2 * times + 1} needed (--times {times})")
    chosen = iter(paths[1:]) if each_dept else itertools.repeat(path)
    async with TestClient(TestServer(app)) as client:
        first_profiler = cProfile.Profile(time.process_time) if first_top else None
        first = time.perf_counter()
        if first_profiler is not None:
            first_profiler.enable()
        resp = await client.get(paths[0], headers=headers)
        body = await resp.read()
        if first_profiler is not None:
            first_profiler.disable()
        first_s = time.perf_counter() - first
        print(f"{path} as {person.userid}: HTTP {resp.status}, {len(body):,} bytes; "
              f"first request {first_s * 1000:.0f} ms ({stmts.count()} statements)")
        if resp.status != 200:
            print(body[:500].decode(errors="replace"))
        print(f"  first request: service CPU {cpu[0] * 1000 if cpu else 0:.0f} ms; its slowest statements:")
        for sql, ts in sorted(stmts.times.items(), key=lambda kv: -sum(kv[1]))[:8]:
            print(f"  {len(ts):4d}× {sum(ts) / len(ts) * 1000:7.2f} ms  {sql}")
        if first_profiler is not None:  # where the first request's CPU went (the profiler roughly doubles it)
            pstats.Stats(first_profiler).sort_stats("tottime").print_stats(first_top)
        stmts.times.clear()
        cpu.clear()
        walls = []
        for _ in range(times):  # measured without the profiler (it doubles the CPU)
            start = time.perf_counter()
            resp = await client.get(next(chosen), headers=headers)
            await resp.read()
            walls.append(time.perf_counter() - start)
        page_cpu, measured = list(cpu), {k: list(v) for k, v in stmts.times.items()}
        cpu.clear()
        for _ in range(times):  # the stack alone: a route that runs SELECT 1 on the pool
            await (await client.get(BASELINE, headers=headers)).read()
        base_cpu = list(cpu)
        profiler = cProfile.Profile(time.process_time)  # CPU, not wall time (the DB waits are not ours)
        if profile or top:
            for _ in range(times):
                profiler.enable()
                await (await client.get(next(chosen), headers=headers)).read()
                profiler.disable()
    walls.sort()
    print(f"{times} requests: wall median {walls[len(walls) // 2] * 1000:.1f} ms, "
          f"service CPU {sum(page_cpu) / times * 1000:.1f} ms a request "
          f"(baseline SELECT 1: {sum(base_cpu) / times * 1000:.1f} ms), "
          f"{sum(len(v) for v in measured.values()) / times:.1f} statements a request, "
          f"SQL {sum(sum(v) for v in measured.values()) / times * 1000:.1f} ms a request")
    for sql, ts in sorted(measured.items(), key=lambda kv: -sum(kv[1])):
        print(f"  {len(ts) / times:4.1f}× {sum(ts) / len(ts) * 1000:7.2f} ms  {sql}")
    if not (profile or top):
        return
    stats = pstats.Stats(profiler)
    if profile:
        stats.dump_stats(profile)
    stats.sort_stats("cumulative").print_stats(top)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("path", help="the page, e.g. /sidebar/customer/wm00000123")
    parser.add_argument("--as", dest="userid", required=True, help="the signed-in member")
    parser.add_argument("--role", default="", help="a console role (ops_admin, auditor, branch_head, team_lead)")
    parser.add_argument("--scope", default="", help="the console scope of a branch head or team lead")
    parser.add_argument("--db", default=bench_postgres_url("scrm_million"))
    parser.add_argument("--times", type=int, default=20)
    parser.add_argument("--profile", help="also write the cProfile stats here")
    parser.add_argument("--each-dept", action="store_true",
                        help="ask each measured request for another department (PATH&dept=…, the directory's "
                             "departments and their parents, deepest first): a scope's first view, where what "
                             "is shared by every scope (today's figures, the stored periods) is already kept")
    parser.add_argument("--top", type=int, default=0, help="lines of a cProfile summary (0: no profile)")
    parser.add_argument("--first-top", type=int, default=0,
                        help="lines of a cProfile summary of the first request alone, by own time (0: none)")
    a = parser.parse_args(argv)
    asyncio.run(run(a.db, a.path, Person(a.userid, a.userid, a.role, a.scope), a.times, a.profile, a.top,
                    a.each_dept, a.first_top))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
