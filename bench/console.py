"""Console bench: the console's pages on the 1,000,000-customer data set (``bench._million``), on PostgreSQL.

    .venv/bin/python -m bench.console                                  # generate 1,000,000 customers, then measure
    .venv/bin/python -m bench.console --reuse                          # measure on the data set already there
    .venv/bin/python -m bench.console --reuse --processes 2            # the service as two instances
    .venv/bin/python -m bench.console --customers 20000 --db postgresql+asyncpg://postgres@127.0.0.1:5432/scrm_small

Three phases, each printed with its goal and the ratio measured/goal:

1. **nightly roll-up** (``handlers.console.rollup.rebuild``) of yesterday, in this process, in one
   transaction as the job runs it, then the job's warm-up of the cockpit's cached periods
   (``handlers.console.jobs.warm_cockpit``), with the effect page's stored rows built before it
   (``handlers.console.effectstore.build_due``: yesterday built, the other days checked): goal
   ≤ 60 s for all three. Before it, every day the cockpit's 30-day view reads (the period, the
   previous one, the weeks of the retention cohorts) is rolled up once, and every effect day not
   stored yet is built, outside the timing (each roll-up day's seconds are kept: their maximum is
   printed too).
   Then the calendar's outlook (``handlers.console.outlook.refresh``, what the ``console.outlook``
   job runs at start, after a reload and nightly): the planner over the next 30 days, stored per
   sender, timed; already stored for today and this playbook version, it is reused (said so).
2. **the cockpit, first render**: ``GET /console/cockpit?days=30`` of the whole bank by an ops
   admin, the service's first request to it: goal ≤ 1 s. It reads the stored roll-ups and computes
   today (up to the clock) live from the raw rows, as the page always does.
3. **the pages under load**: ``--users`` signed-in people at once (ops admins, an auditor,
   sub-branch heads, team leads, each with their own scope), each asking every page their role
   may see, in a shuffled order, ``--rounds`` times: home, tasks, cockpit 7 and 30 days, and for
   ops admins and the auditor ops and audit; effect, calendar, customers and materials when
   their route answers (an empty 404 is a page not built yet: skipped, and said so). Goal p95 <
   300 ms per page. A **baseline** route in the same service process (a bare aiohttp handler
   running ``SELECT 1`` on the service's pool) is asked alongside by every user, so its p95 shows
   what part of a page's time is the stack's and the machine's, not the page's.

The service runs in its own process (``create_app(build_runtime(settings), workers=False)``, the
repo's playbook, a FakeClock at the data set's :data:`~bench._million.ANCHOR`), the load from this
one over loopback with keep-alive connections. With ``--processes N`` it runs as N such processes
on N ports — N instances of the service on one database, as a bank runs at least two — the users
dealt to them in turn (a load balancer's sticky sessions); each process's first cockpit view is
timed (each keeps its own live part) and the slowest is the first-render figure; CPU and RSS are
the processes' sums. After the untimed preparation, the tables it filled are analyzed
(``ANALYZE``), as autovacuum would have done on a bank's database by the next night. Sessions are
rows of ``console_session`` written here (what a WeCom sign-in leaves), grants an access file
written for the run. Also printed: the service's RSS (start, after the load, peak), and the CPU of
the service, this process, PostgreSQL (every ``postgres`` process, other people's queries
included) and the rest of the machine over the load, with the load average: other people's jobs
share this host.

Exit status 0 whatever the figures; non-zero only when a request failed or a process crashed.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import multiprocessing as mp
import os
import random
import secrets
import socket
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Event as MpEvent
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # also runnable as `python bench/console.py`
    sys.path.insert(0, str(ROOT))

import aiohttp

from bench import _million as million
from bench._pg import analyze, bench_postgres_url
from bench._proc import system_busy_s
from tests.support.processes import proc_cpu_s, until_stopped

HOST = "127.0.0.1"
PAGE_P95_GOAL_MS = 300.0
COCKPIT_FIRST_GOAL_S = 1.0
ROLLUP_GOAL_S = 60.0
BASELINE = "/bench/baseline"
COOKIES = {"console": "scrm_console", "sidebar": "scrm_sidebar"}
#: Pages other helpers are building: measured when their route answers, skipped when it is empty.
OPTIONAL_PAGES = {"effect": "/console/effect", "calendar": "/console/calendar", "customers": "/console/customers",
                  "materials": "/console/materials"}


# --------------------------------------------------------------------------- the service (child process)


def service_settings(db_url: str, port: int, access_file: Path) -> Any:
    from scrm.main import load_settings
    from scrm.sandbox import SANDBOX_AES_KEY, SANDBOX_AGENT_ID, SANDBOX_CORP_ID, SANDBOX_SECRET, SANDBOX_TOKEN

    wecom = {"corp_id": SANDBOX_CORP_ID, "token": SANDBOX_TOKEN, "encoding_aes_key": SANDBOX_AES_KEY,
             "secret": SANDBOX_SECRET, "agent_id": SANDBOX_AGENT_ID, "api_base": f"http://{HOST}:9"}
    return load_settings(None, database={"url": db_url}, wecom=wecom,
                         playbook={"sop_dir": str(ROOT / "sop"), "materials_dir": str(ROOT / "materials")},
                         server={"public_url": f"http://{HOST}:{port}"}, radar={"signing_key": "bench-key"},
                         console={"access_file": str(access_file)}, log={"level": "WARNING", "format": "text"})


def service_main(db_url: str, port: int, access_file: str, conn: Connection, stop: MpEvent,
                 log_name: str = "service.log") -> None:
    from bench._proc import log_service_to

    os.chdir(Path(access_file).parent)  # load_settings reads ./scrm.toml and SCRM_*: not here
    for key in [k for k in os.environ if k.startswith("SCRM_")]:
        del os.environ[key]
    log_service_to(Path(access_file).parent / log_name, "WARNING", "text")  # a page's traceback: there
    asyncio.run(_serve(db_url, port, Path(access_file), conn, stop))


async def _serve(db_url: str, port: int, access_file: Path, conn: Connection, stop: MpEvent) -> None:
    from aiohttp import web
    from sqlalchemy import text

    from bench._proc import peak_rss_mb, rss_mb
    from scrm.kernel.clock import FakeClock
    from scrm.kernel.http import create_app
    from scrm.main import build_runtime

    runtime = build_runtime(service_settings(db_url, port, access_file), clock=FakeClock(million.ANCHOR))
    app = create_app(runtime, workers=False)

    async def baseline(_request: web.Request) -> web.Response:
        async with runtime.sessions() as db:
            await db.scalar(text("SELECT 1"))
        return web.Response(text="ok")

    app.router.add_get(BASELINE, baseline)
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, HOST, port).start()
        conn.send(("ready", rss_mb()))
        await until_stopped(stop)
        conn.send({"rss_mb": rss_mb(), "peak_mb": peak_rss_mb()})
    finally:
        await runner.cleanup()


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Service:
    """The service's child processes, one per port (see :func:`serving`): RSS figures are their sums."""

    ports: list[int]
    pids: list[int]
    rss_start_mb: float
    log: Path  # the directory of their logs when there are several
    end: dict[str, float] = field(default_factory=dict)

    @property
    def base(self) -> str:
        """The first process's address (the first render, the probes)."""
        return self.bases[0]

    @property
    def bases(self) -> list[str]:
        return [f"http://{HOST}:{port}" for port in self.ports]


class serving:
    """Start ``processes`` service processes on the data set, each on its own port (instances of
    the service, as a bank runs several behind its load balancer); on exit stop them and collect
    their RSS."""

    def __init__(self, db_url: str, access: str, processes: int = 1) -> None:
        self._db_url, self._access, self._n = db_url, access, processes
        self._dir = Path(tempfile.mkdtemp(prefix="bench-console-"))  # kept: the service's log

    def __enter__(self) -> Service:
        ctx = mp.get_context("spawn")
        access_file = self._dir / "console.yaml"
        access_file.write_text(self._access, encoding="utf-8")
        self._stop = ctx.Event()
        self._procs: list[tuple[Any, Connection]] = []
        logs = ["service.log"] if self._n == 1 else [f"service-{i}.log" for i in range(self._n)]
        ports = []
        for log in logs:
            conn, child_conn = ctx.Pipe()
            port = free_port()
            proc = ctx.Process(target=service_main, args=(self._db_url, port, str(access_file), child_conn,
                                                          self._stop, log), daemon=True)
            proc.start()
            self._procs.append((proc, conn))
            ports.append(port)
        rss = 0.0
        for _proc, conn in self._procs:
            if not conn.poll(120):
                self._stop.set()
                raise SystemExit("the service did not start")
            rss += conn.recv()[1]
        self.service = Service(ports, [proc.pid for proc, _ in self._procs], rss,
                               self._dir / logs[0] if self._n == 1 else self._dir)
        return self.service

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for proc, conn in self._procs:
            if conn.poll(30):
                for k, v in conn.recv().items():
                    self.service.end[k] = self.service.end.get(k, 0.0) + v
            proc.join(30)


# --------------------------------------------------------------------------- sessions and the load


@dataclass(frozen=True)
class Person:
    userid: str
    name: str
    role: str  # a console role; "" for a sidebar user
    scope: str = ""


async def sign_in(db_url: str, people: Sequence[Person], app: str) -> dict[str, str]:
    """A session row per person, as a WeCom sign-in leaves it (the storage keeps the cookie
    token's SHA-256 and the session's data); userid → the cookie token. The FakeClock never
    moves, so no request has to move the idle limit on: page views write only their audit row."""
    from sqlalchemy import text

    from scrm.adapters.db.engine import make_engine

    anchor = million.ANCHOR.isoformat()
    tokens = {p.userid: secrets.token_urlsafe(32) for p in people}
    rows = []
    for p in people:
        data: dict[str, str] = {"actor": p.userid, "name": p.name, "csrf": secrets.token_urlsafe(24),
                                "_created": anchor, "_touched": anchor}  # handlers.console.sessions' keys
        if p.role:
            data["role"] = p.role
        rows.append({"h": hashlib.sha256(tokens[p.userid].encode()).hexdigest(), "d": json.dumps(data),
                     "c": million.ANCHOR, "e": million.ANCHOR + timedelta(days=1)})
    engine = make_engine(db_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("INSERT INTO console_session (token_hash, data, created_at, expires_at) "
                                    "VALUES (:h, CAST(:d AS json), :c, :e)"), rows)
    finally:
        await engine.dispose()
    return {u: f"{COOKIES[app]}={t}" for u, t in tokens.items()}


@dataclass
class Tally:
    latencies_ms: dict[str, list[float]] = field(default_factory=dict)
    errors: dict[str, list[str]] = field(default_factory=dict)
    served_by: dict[str, int] = field(default_factory=dict)  # service address → requests it answered

    def add(self, label: str, ms: float, error: str | None) -> None:
        self.latencies_ms.setdefault(label, []).append(ms)
        if error is not None:
            self.errors.setdefault(label, []).append(error)


Request = tuple[str, str]  # (label, path)


async def fetch(http: aiohttp.ClientSession, url: str, cookie: str) -> tuple[float, int, str]:
    """(milliseconds, status, body head) of one GET, the body read to its end."""
    t0 = time.perf_counter()
    async with http.get(url, headers={"Cookie": cookie}, allow_redirects=False) as resp:
        body = await resp.read()
    return (time.perf_counter() - t0) * 1000, resp.status, body[:200].decode(errors="replace")


async def drive(bases: str | Sequence[str], plans: dict[str, tuple[str, list[Request]]]) -> Tally:
    """Every user (``userid → (cookie, requests)``) at once, each one request after another; with
    several service processes, users are dealt to them in turn (a load balancer's sticky sessions)."""
    tally = Tally()
    bases = [bases] if isinstance(bases, str) else list(bases)
    connector = aiohttp.TCPConnector(limit=len(plans) + 1)
    async with aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar()) as http:

        async def user(base: str, cookie: str, requests: list[Request]) -> None:
            for label, path in requests:
                try:
                    ms, status, head = await fetch(http, base + path, cookie)
                    tally.served_by[base] = tally.served_by.get(base, 0) + 1
                    tally.add(label, ms, None if status == 200 else f"{status} {path}: {head[:120]!r}")
                except aiohttp.ClientError as exc:
                    tally.add(label, 0.0, f"{type(exc).__name__} {path}")

        await asyncio.gather(*(user(bases[i % len(bases)], cookie, reqs)
                               for i, (cookie, reqs) in enumerate(plans.values())))
    return tally


def shuffled_rounds(requests: Sequence[Request], rounds: int, rng: random.Random) -> list[Request]:
    """``rounds`` passes over ``requests`` (plus the baseline each pass), each in a new order."""
    out: list[Request] = []
    for _ in range(rounds):
        one = [*requests, ("baseline", BASELINE)]
        rng.shuffle(one)
        out += one
    return out


def percentile(values: Sequence[float], q: float) -> float:
    """The q-quantile, nearest rank (p95 of 20 values is the 19th smallest)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 1))
    return ordered[int(rank) - 1]


@dataclass
class Machine:
    """CPU seconds over a phase: the service, this process, PostgreSQL, everything."""

    service_pids: list[int]
    t0: float = 0.0
    marks: dict[str, float | None] = field(default_factory=dict)
    load_before: float = 0.0
    pg0: dict[int, float] = field(default_factory=dict)

    def __enter__(self) -> Machine:
        self.t0 = time.perf_counter()
        self.load_before = os.getloadavg()[0]
        self.marks = {"service": self._service_cpu(), "own": time.process_time(), "busy": system_busy_s()}
        self.pg0 = postgres_cpu()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self.t0
        self.load_after = os.getloadavg()[0]
        end = {"service": self._service_cpu(), "own": time.process_time(), "busy": system_busy_s()}
        self.cpu: dict[str, float | None] = {"pg": postgres_delta_s(self.pg0, postgres_cpu())}
        for k, v in end.items():
            before = self.marks[k]
            self.cpu[k] = v - before if v is not None and before is not None else None
        parts = [self.cpu[k] for k in ("service", "own", "pg")]
        busy = self.cpu["busy"]
        self.cpu["rest"] = busy - sum(p or 0.0 for p in parts) if busy is not None else None

    def _service_cpu(self) -> float | None:
        """The service processes' CPU seconds together (None when one cannot be read)."""
        readings = [proc_cpu_s(pid) for pid in self.service_pids]
        return None if any(r is None for r in readings) else sum(r for r in readings if r is not None)

    def lines(self) -> list[str]:
        def pct(k: str) -> str:
            v = self.cpu.get(k)
            return "n/a" if v is None else f"{v:.1f} s ({v / self.wall * 100:.0f} % of a core)"

        return [f"  CPU over the load ({self.wall:.1f} s): service {pct('service')}, load generator {pct('own')}, "
                f"PostgreSQL (all its processes) {pct('pg')}, rest of the machine {pct('rest')}",
                f"  load average (1 min): {self.load_before:.2f} before, {self.load_after:.2f} after; "
                f"{os.cpu_count()} cores"]


def postgres_cpu() -> dict[int, float]:
    """pid → CPU seconds of every process named ``postgres`` on this host (the database server)."""
    out: dict[int, float] = {}
    try:
        pids = [int(p) for p in os.listdir("/proc") if p.isdigit()]
    except OSError:
        return out
    for pid in pids:
        try:
            if Path(f"/proc/{pid}/comm").read_text().strip() != "postgres":
                continue
        except OSError:
            continue
        cpu = proc_cpu_s(pid)
        if cpu is not None:
            out[pid] = cpu
    return out


def postgres_delta_s(before: dict[int, float], after: dict[int, float]) -> float | None:
    """PostgreSQL's CPU between two readings: per process, new ones from zero (a backend that
    ended meanwhile took its seconds with it: a lower bound)."""
    if not after:
        return None
    return sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items())


def table(rows: Sequence[Sequence[str]], head: Sequence[str]) -> None:
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(len(head))]
    for r in [head, ["-" * w for w in widths], *rows]:
        print("  " + "  ".join(str(c).rjust(w) if i else str(c).ljust(w) for i, (c, w) in enumerate(zip(r, widths,
                                                                                                       strict=True))))


def page_rows(tally: Tally, order: Sequence[str]) -> list[list[str]]:
    """One row per page: requests, p50, p95, max, errors, goal, ratio p95/goal, p95 vs baseline."""
    base95 = percentile(tally.latencies_ms.get("baseline", []), 0.95)
    rows = []
    for label in order:
        ms = tally.latencies_ms.get(label, [])
        if not ms:
            continue
        p95 = percentile(ms, 0.95)
        goal = label != "baseline"
        rows.append([label, str(len(ms)), f"{percentile(ms, 0.5):.0f}", f"{p95:.0f}", f"{max(ms):.0f}",
                     str(len(tally.errors.get(label, []))),
                     f"< {PAGE_P95_GOAL_MS:.0f}" if goal else "-",
                     f"{p95 / PAGE_P95_GOAL_MS:.2f} {'ok' if p95 < PAGE_P95_GOAL_MS else 'MISSED'}" if goal else "-",
                     f"{p95 / base95:.1f}x" if goal and base95 == base95 and base95 > 0 else "-"])
    return rows


PAGE_HEAD = ["page", "requests", "p50 ms", "p95 ms", "max ms", "errors", "goal p95 ms", "p95/goal", "p95/baseline"]


# --------------------------------------------------------------------------- the console's people and pages


def console_people(shape: million.Shape, users: int) -> list[Person]:
    """Two ops admins, an auditor, the sub-branch heads, then team leads, up to ``users``."""
    people = [Person("ops01", "运营一", "ops_admin"), Person("ops02", "运营二", "ops_admin"),
              Person("aud01", "审计一", "auditor")]
    people += [Person(million.head_of(sb), f"支行长{i + 1}", "branch_head", sb)
               for i, sb in enumerate(million.SUB_BRANCHES)]
    people += [Person(million.lead_of_team(t), f"经理{i + 1}", "team_lead", t) for i, t in enumerate(million.TEAMS)]
    if users > len(people):
        raise SystemExit(f"--users at most {len(people)}")
    del shape
    return people[:users]


def access_file(people: Sequence[Person]) -> str:
    lines = ["members:"]
    for p in people:
        scope = f", scope: {p.scope}" if p.scope else ""
        lines.append(f"  {p.userid}: {{role: {p.role}{scope}}}")
    return "\n".join(lines) + "\n"


CORE_PAGES: list[Request] = [("home", "/console/"), ("tasks", "/console/tasks"),
                             ("cockpit 7", "/console/cockpit?days=7"), ("cockpit 30", "/console/cockpit?days=30")]
OPS_PAGES: list[Request] = [("ops", "/console/ops"), ("audit", "/console/audit")]


async def probe_optional(base: str, cookies: dict[str, str], people: Sequence[Person],
                         without: Sequence[str] = ()) -> tuple[dict[str, set[str]], list[str]]:
    """Which optional pages answer 200, per role; and a note for each one that does not (or is
    left out: ``without``)."""
    by_role: dict[str, set[str]] = {}
    notes: list[str] = []
    one_per_role = {p.role: p for p in reversed(people)}
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
        for label, path in OPTIONAL_PAGES.items():
            if label in without:
                notes.append(f"{label} ({path}): left out (--without)")
                continue
            answers = {}
            for role, p in one_per_role.items():
                _ms, status, head = await fetch(http, base + path, cookies[p.userid])
                answers[role] = (status, head)
                if status == 200:
                    by_role.setdefault(role, set()).add(label)
            statuses = {s for s, _ in answers.values()}
            if statuses == {404} and all(not h.strip() or "404" in h for _, h in answers.values()):
                notes.append(f"{label} ({path}): 404, not built yet — skipped")
            elif statuses != {200}:
                notes.append(f"{label} ({path}): " + ", ".join(f"{r} {s}" for r, (s, _) in answers.items())
                             + " — measured only where 200")
    return by_role, notes


# --------------------------------------------------------------------------- the roll-up


def cockpit_first_day(today: date, days: int = 30) -> date:
    """The first day the cockpit reads for ``days`` (``handlers.console.cockpit.cockpit``'s rule)."""
    since = today - timedelta(days=days - 1)
    return min(since - timedelta(days=days), since - timedelta(days=since.weekday()))


async def roll_up(db_url: str, depts: Sequence[str] = ()) -> dict[str, Any]:
    """Roll up every day the 30-day cockpit reads that is not stored yet (each timed), then time
    the nightly job's two steps: the rebuild of yesterday in one transaction, and the warm-up
    of the cockpit's cached periods (the whole bank's and those of ``depts``, the scopes of the
    access file, as the job does)."""
    from sqlalchemy import delete

    from handlers.console import effectstore, jobs, rollup
    from handlers.console.models import ConsoleEffectDay
    from scrm.adapters.db.engine import make_engine, make_sessionmaker

    today = million.ANCHOR.astimezone(_zone()).date()
    first, yesterday = cockpit_first_day(today), today - timedelta(days=1)
    engine = make_engine(db_url)
    sessions = make_sessionmaker(engine)
    out: dict[str, Any] = {"today": today, "first": first, "days": {}}
    try:
        async with sessions() as db:
            stored = await rollup.stored_days(db, first, yesterday)
        day = first
        while day <= yesterday:
            if day not in stored:
                t0 = time.perf_counter()
                async with sessions() as db, db.begin():
                    await rollup.rebuild(db, day, million.ZONE, million.ANCHOR)
                out["days"][day] = time.perf_counter() - t0
            day += timedelta(days=1)
        t0 = time.perf_counter()
        async with sessions() as db, db.begin():
            rolled = await rollup.rebuild(db, yesterday, million.ZONE, million.ANCHOR)
        out["rebuild_s"] = time.perf_counter() - t0
        out["nightly_rows"] = len(rolled.values)
        # The job's second step: the effect page's stored rows (handlers.console.effectstore). Every
        # day of its KEEP_DAYS not stored yet first, untimed, as the roll-ups above; then, timed, a
        # night's work: yesterday built anew, the other days checked for late facts. Before the
        # warm-ups, as in the job: building a day drops the kept periods that cover it.
        goals = _effect_goals(today)
        t0 = time.perf_counter()
        async with sessions() as db, db.begin():
            out["effect_days"] = len(await effectstore.build_due(db, today, million.ZONE, goals, million.ANCHOR))
        out["effect_prep_s"] = time.perf_counter() - t0
        if out["days"] or out["effect_days"]:
            # A bulk load's statistics, as autovacuum's analyze leaves them on a bank's database
            # soon after: planned on the empty table's, the seen-customers lookup filtered a
            # quarter of a million rows by key (0.5 s) instead of probing the index.
            async with engine.begin() as conn:
                await analyze(conn, ["console_rollup", "console_rollup_day", "console_effect_row",
                                     "console_effect_day"])
        t0 = time.perf_counter()
        async with sessions() as db, db.begin():
            await db.execute(delete(ConsoleEffectDay).where(ConsoleEffectDay.day == yesterday))
            await effectstore.build_due(db, today, million.ZONE, goals, million.ANCHOR)
        effect_build_s = time.perf_counter() - t0
        # The third: the whole bank's and every scope's 7/30/90-day periods computed for today's
        # views, the cockpit's (handlers.console.jobs.warm_cockpit) then the effect page's.
        t0 = time.perf_counter()
        async with sessions() as db, db.begin():
            await jobs.warm_cockpit(db, today, depts)
        out["warm_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        async with sessions() as db, db.begin():
            await jobs.warm_effect(db, today, goals, depts)
        out["effect_s"] = effect_build_s + time.perf_counter() - t0
        out["nightly_s"] = out["rebuild_s"] + out["warm_s"] + out["effect_s"]
        async with sessions() as db:
            out["stored"] = len(await rollup.stored_days(db, first, yesterday))
    finally:
        await engine.dispose()
    return out


def _effect_goals(today: date) -> Any:
    """The goals of the repo's playbook, as the service (and its nightly job) reads them."""
    from handlers.console.effect import goals_of, playbook_sops
    from scrm.playbook import load_playbook

    return goals_of(playbook_sops(load_playbook(ROOT / "sop", ROOT / "materials", today=today)))


async def plan_outlook(db_url: str) -> dict[str, Any]:
    """The ``console.outlook`` job's work, timed (wall and this process's CPU: the planner's
    Python; PostgreSQL's share is the rest of the wall time), with the playbook the service
    loads and its version, on the data set's "now"; a no-op (``computed`` False) when today's
    outlook of this version is stored already."""
    from sqlalchemy import func, select

    from handlers.console import outlook
    from handlers.console.models import ConsoleOutlook
    from scrm.adapters.db.engine import make_engine, make_sessionmaker
    from scrm.kernel.clock import FakeClock
    from scrm.playbook.holder import PlaybookHolder

    holder = PlaybookHolder(service_settings(db_url, 0, ROOT / "console.yaml").playbook, FakeClock(million.ANCHOR))
    pb = holder.load()
    today = million.ANCHOR.astimezone(_zone()).date()
    engine = make_engine(db_url)
    sessions = make_sessionmaker(engine)
    try:
        t0, c0 = time.perf_counter(), time.process_time()
        async with sessions() as db, db.begin():
            run = await outlook.refresh(db, pb, holder.version, today, million.ANCHOR)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        if run is not None:
            async with engine.begin() as conn:
                await analyze(conn, ["console_outlook", "console_outlook_run"])
        async with sessions() as db:
            stored = await outlook.latest(db)
            rows = await db.scalar(select(func.count()).select_from(ConsoleOutlook))
    finally:
        await engine.dispose()
    return {"computed": run is not None, "wall_s": wall, "cpu_s": cpu, "rows": rows, "version": holder.version,
            "computed_at": stored.computed_at if stored is not None else None}


def _zone() -> Any:
    from zoneinfo import ZoneInfo

    return ZoneInfo(million.ZONE)


# --------------------------------------------------------------------------- the run


async def measure(db_url: str, customers: int, users: int, rounds: int,
                  without: Sequence[str] = (), processes: int = 1) -> dict[str, Any]:
    """Phases 1–3 on the data set already in ``db_url``; the figures as data. ``without``: optional
    pages left out of the load (one page holding the event loop for seconds hides every other)."""
    shape = million.Shape(customers)
    people = console_people(shape, users)
    out: dict[str, Any] = {"rollup": await roll_up(db_url, [p.scope for p in people])}
    out["outlook"] = await plan_outlook(db_url)
    cookies = await sign_in(db_url, people, "console")
    with serving(db_url, access_file(people), processes) as svc:
        # Each process's first view (each keeps its own live part): the slowest is the figure.
        firsts = [await _first_cockpit(base, cookies[people[0].userid]) for base in svc.bases]
        ms, status, head = max(firsts, key=lambda f: (f[1] != 200, f[0]))
        out["cockpit_first"] = {"ms": ms, "status": status, "head": head, "each_ms": [f[0] for f in firsts]}
        optional, out["notes"] = await probe_optional(svc.base, cookies, people, without)
        rng = random.Random(7)
        plans = {}
        for p in people:
            pages = CORE_PAGES + (OPS_PAGES if p.role in ("ops_admin", "auditor") else [])
            pages += [(label, OPTIONAL_PAGES[label]) for label in sorted(optional.get(p.role, ()))
                      if label not in without]
            plans[p.userid] = (cookies[p.userid], shuffled_rounds(pages, rounds, rng))
        with Machine(svc.pids) as machine:
            out["tally"] = await drive(svc.bases, plans)
        out["machine"] = machine
    out["service"] = svc
    out["order"] = ([label for label, _ in CORE_PAGES + OPS_PAGES] + [p for p in OPTIONAL_PAGES if p not in without]
                    + ["baseline"])
    return out


async def _first_cockpit(base: str, cookie: str) -> tuple[float, int, str]:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
        return await fetch(http, base + "/console/cockpit?days=30", cookie)


def report(out: dict[str, Any], how: str, gen_s: float | None, customers: int, users: int, rounds: int) -> int:
    r, svc, tally = out["rollup"], out["service"], out["tally"]
    print(f"console bench: {customers:,} customers (data set {how}"
          + (f" in {gen_s:.0f} s" if gen_s is not None else "") + f"), {users} users × {rounds} rounds, "
          f"today {r['today']} ({million.ZONE}), PostgreSQL"
          + ("" if len(svc.pids) == 1 else f", {len(svc.pids)} service processes (users dealt to them in turn)"))
    days = r["days"]
    if days:
        print(f"  roll-up of the {len(days)} days not stored yet ({r['first']} …): "
              f"{sum(days.values()):.1f} s, slowest day {max(days.values()):.1f} s (untimed preparation)")
    nightly, first = r["nightly_s"], out["cockpit_first"]
    first_s = first["ms"] / 1000
    if r["effect_days"]:
        print(f"  effect rows of the {r['effect_days']} days not stored yet: {r['effect_prep_s']:.1f} s "
              "(untimed preparation)")
    table([["nightly job: roll-up of one day (yesterday)", f"{r['rebuild_s']:.2f} s", "", ""],
           ["nightly job: cockpit warm-up (whole bank, 7/30/90 days)", f"{r['warm_s']:.2f} s", "", ""],
           ["nightly job: effect rows (yesterday built, the rest checked, counts kept)", f"{r['effect_s']:.2f} s",
            "", ""],
           ["nightly job, all three steps", f"{nightly:.2f} s", f"<= {ROLLUP_GOAL_S:.0f} s",
            f"{nightly / ROLLUP_GOAL_S:.3f} {'ok' if nightly <= ROLLUP_GOAL_S else 'MISSED'}"],
           ["cockpit 30 days, first render (ops admin, whole bank"
            + (")" if len(first["each_ms"]) == 1 else "; the slowest process's)"), f"{first_s:.2f} s"
            + ("" if first["status"] == 200 else f" (HTTP {first['status']})"), f"<= {COCKPIT_FIRST_GOAL_S:.0f} s",
            f"{first_s / COCKPIT_FIRST_GOAL_S:.2f} {'ok' if first_s <= COCKPIT_FIRST_GOAL_S else 'MISSED'}"]],
          ["figure", "measured", "goal", "measured/goal"])
    o = out["outlook"]
    if o["computed"]:
        print(f"  calendar outlook job (30 days planned and stored, playbook {o['version']}): "
              f"{o['wall_s']:.1f} s wall, "
              f"{o['cpu_s']:.1f} s CPU in this process; {o['rows']:,} rows")
    else:
        print(f"  calendar outlook: already stored for today and playbook {o['version']} (computed at "
              f"{o['computed_at']:%Y-%m-%d %H:%M} UTC; {o['rows']:,} rows), reused — the job was not run again")
    print(f"  pages with {users} users at once ({sum(len(v) for v in tally.latencies_ms.values())} requests):")
    table(page_rows(tally, out["order"]), PAGE_HEAD)
    for note in out["notes"]:
        print(f"  note: {note}")
    failed = print_run_footer(svc, out["machine"], tally, show_log=bool(out["notes"]))
    return 1 if failed or first["status"] != 200 else 0


def print_run_footer(svc: Service, machine: Machine, tally: Tally, *, show_log: bool = False) -> bool:
    """The service's memory, the machine's CPU, and the failed requests of a run (with where the
    service's log is when any failed, or ``show_log``); returns whether any failed."""
    together = "" if len(svc.pids) == 1 else " (its processes together)"
    print(f"  service RSS{together}: {svc.rss_start_mb:.0f} MB at start, "
          f"{svc.end.get('rss_mb', float('nan')):.0f} MB after the load, "
          f"peak {svc.end.get('peak_mb', float('nan')):.0f} MB")
    for line in machine.lines():
        print(line)
    failed = {k: v for k, v in tally.errors.items() if v}
    for label, errors in failed.items():
        print(f"  ERRORS {label}: {len(errors)}, first: {errors[0]}")
    if failed or show_log:
        print(f"  the service's log: {svc.log}")
    return bool(failed)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_args(parser)
    parser.add_argument("--users", type=int, default=20, help="people signed in at once (at most 27)")
    parser.add_argument("--processes", type=int, default=1,
                        help="service processes, each on its own port; users dealt to them in turn")
    parser.add_argument("--without", action="append", default=[], choices=sorted(OPTIONAL_PAGES),
                        help="leave this optional page out of the load (repeatable)")
    a = parser.parse_args(argv)
    how, gen_s = asyncio.run(million.ready(a.db, a.customers, reuse=a.reuse))
    if a.processes < 1:
        parser.error("--processes must be at least 1")
    out = asyncio.run(measure(a.db, a.customers, a.users, a.rounds, a.without, a.processes))
    return report(out, how, gen_s, a.customers, a.users, a.rounds)


def add_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--db", default=bench_postgres_url("scrm_million"),
                        help="a PostgreSQL bench database (created if missing; EMPTIED and refilled unless --reuse "
                             "finds the same data set in it)")
    parser.add_argument("--reuse", action="store_true", help="measure on the data set already in --db when it has "
                                                             "--customers customers")
    parser.add_argument("--rounds", type=int, default=5, help="passes of each user over their pages")


if __name__ == "__main__":
    raise SystemExit(main())
