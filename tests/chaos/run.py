"""One chaos run: the sandbox and the driver here, the service in child processes killed with
SIGKILL every 2–6 s of serving and restarted at once, then a settle phase and the evidence.

    sandbox (this process) ◀── WeCom API calls ── service slot a (child, fixed port) ─┐
    driver  (this process) ── callbacks, retried ─▶ service slot b (child, fixed port) ─┴─ one database

The kill schedule is drawn from a seeded RNG: each kill comes uniform(2, 6) s after the later of
the previous kill and the moment its target started serving (so every incarnation serves at
least 2 s: a restart costs seconds of imports, and killing every incarnation before it listens
would test nothing but the driver's patience).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import resource
import time
from collections import Counter
from collections.abc import Awaitable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from handlers.groups.models import GroupChat, GroupMember
from scrm.adapters.db import migrate
from scrm.adapters.db.engine import make_engine, make_sessionmaker
from scrm.kernel.clock import SystemClock
from scrm.kernel.models import OUTBOX_UNFINISHED, InboxEvent, OutboxAction
from scrm.sandbox.demo import seed_demo
from scrm.sandbox.state import SandboxState
from tests.chaos.fleet import Fleet
from tests.chaos.playbook import write_playbook
from tests.chaos.service import ServiceSpec
from tests.chaos.wecom import Poster, QueuingDriver, start_sandbox
from tests.chaos.workload import Workload

MEMBERS = (("zhangwei", "张伟"), ("lina", "李娜"), ("chenjing", "陈静"), ("wangqiang", "王强"))


@dataclass(frozen=True)
class ChaosConfig:
    instances: int = 1
    adds: int = 1000
    rate: float = 20.0  # adds per second
    kill_every_s: tuple[float, float] = (2.0, 6.0)
    settle_s: float = 60.0  # after the last event is issued: acks, inbox and outbox settled
    seed: int = 20261111


@dataclass
class Snapshot:
    """What the sandbox and the database say once the run has settled (or given up)."""

    welcome_calls: dict[str, list[float]]  # code → times of accepted send_welcome_msg
    welcomes_to: Counter[str]  # external_userid → welcomes delivered
    mark_tags: Counter[tuple[str, str, str]]  # (userid, external_userid, tag) → accepted adds
    app_calls: Counter[tuple[str, str]]  # (touser, text) → accepted message/send calls
    app_delivered: Counter[tuple[str, str]]  # (to, text) → delivered
    app_dropped: Counter[str]  # drop reason → count
    outbox: list[dict[str, Any]]
    inbox_status: Counter[str]
    inbox_bad: list[dict[str, Any]]  # dead (and, when unsettled, pending) rows
    add_rows: dict[str, dict[str, Any]]  # welcome code → its inbox row (received_at, done_at...)
    relation_tags: dict[tuple[str, str], set[str]]  # (userid, external_userid) → tag ids in WeCom
    tag_ids: dict[str, str]  # "group/tag" → tag id in WeCom
    chats_wecom: dict[str, tuple[str, set[str]]]  # chat_id → (member version, members) in WeCom
    chats_service: dict[str, tuple[str, int, set[str]]]  # chat_id → (version, count, current members)


@dataclass
class ChaosResult:
    config: ChaosConfig
    db: str
    workload: Workload
    fleet: Fleet
    poster: Poster
    snapshot: Snapshot
    settled: bool
    settle_s: float  # from the last event issued to settled
    chaos_s: float  # the chaos phase (events issued, kills running)
    wall_s: float
    logs: Path
    epoch_offset: float  # add to a loop time of this run: seconds since the epoch
    service_cpu_s: float  # every incarnation together (user + system)
    driver_cpu_s: float  # this process: the sandbox, the driver, the checks
    load: tuple[float, float]  # the machine's 1-minute load average at the start and the end
    log_lines: Counter[str] = field(default_factory=Counter)


async def prepare_database(url: str) -> None:
    """Migrate, and import the staff directory (member names), as a deployment has."""
    await migrate.upgrade_async(url)
    from handlers.contacts.models import Member

    engine = make_engine(url)
    try:
        async with make_sessionmaker(engine)() as session, session.begin():
            session.add_all([Member(userid=u, name=n) for u, n in MEMBERS])
    finally:
        await engine.dispose()


async def _first(*waits: Awaitable[Any], within_s: float | None = None) -> None:
    tasks = [asyncio.ensure_future(w) for w in waits]
    try:
        await asyncio.wait(tasks, timeout=within_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in tasks:
            t.cancel()


async def chaos(fleet: Fleet, rng: random.Random, every_s: tuple[float, float], stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    last_kill = loop.time()
    while not stop.is_set():
        slot = rng.choice(fleet.slots)
        delay = rng.uniform(*every_s)
        inc = slot.current
        await _first(inc.ready.wait(), inc.exited.wait(), stop.wait())
        if stop.is_set():
            return
        if not inc.ready.is_set():  # it died on its own before serving: a supervisor restarts it
            fleet.start(slot)
            continue
        assert inc.ready_at is not None
        at = max(last_kill, inc.ready_at) + delay
        await _first(stop.wait(), inc.exited.wait(), within_s=max(0.0, at - loop.time()))
        if stop.is_set():
            return
        if inc.exited.is_set():  # it died on its own (a crash, recorded): restart it
            fleet.start(slot)
            continue
        await fleet.kill(slot)
        last_kill = loop.time()


async def _counts(engine: AsyncEngine) -> tuple[Counter[str], Counter[str]]:
    async with engine.connect() as conn:
        inbox = Counter({s: n for s, n in (await conn.execute(
            select(InboxEvent.status, func.count()).group_by(InboxEvent.status))).all()})
        outbox = Counter({s: n for s, n in (await conn.execute(
            select(OutboxAction.status, func.count()).group_by(OutboxAction.status))).all()})
    return inbox, outbox


def _settled(inbox: Counter[str], outbox: Counter[str]) -> bool:
    return inbox["pending"] == 0 and sum(outbox[s] for s in OUTBOX_UNFINISHED) == 0


async def _snapshot(state: SandboxState, engine: AsyncEngine, workload: Workload) -> Snapshot:
    codes = {a.code for a in workload.adds}
    welcome_calls: dict[str, list[float]] = {}
    for call in state.received_calls("externalcontact/send_welcome_msg"):
        welcome_calls.setdefault(str(call.body.get("welcome_code", "")), []).append(call.at)
    mark_tags: Counter[tuple[str, str, str]] = Counter()
    for call in state.received_calls("externalcontact/mark_tag"):
        for tag in call.body.get("add_tag", []):
            mark_tags[(str(call.body["userid"]), str(call.body["external_userid"]), str(tag))] += 1
    app_calls: Counter[tuple[str, str]] = Counter()
    for call in state.received_calls("message/send"):
        text = str((call.body.get("text") or {}).get("content", call.body.get("msgtype", "")))
        for to in str(call.body.get("touser", "")).split("|"):
            app_calls[(to, text)] += 1
    app_delivered: Counter[tuple[str, str]] = Counter()
    for d in state.delivered_messages(kind="app"):
        app_delivered[(d.to, str((d.content.get("text") or {}).get("content", d.msgtype)))] += 1
    dropped = Counter(d.dropped for d in state.dropped_messages())
    welcomes_to = Counter(d.to for d in state.delivered_messages(kind="welcome"))
    async with engine.connect() as conn:
        outbox = [dict(r._mapping) for r in (await conn.execute(select(
            OutboxAction.id, OutboxAction.idempotency_key, OutboxAction.payload, OutboxAction.status,
            OutboxAction.attempts, OutboxAction.last_error, OutboxAction.result, OutboxAction.created_at,
            OutboxAction.sent_at, OutboxAction.next_attempt_at, OutboxAction.not_after,
            OutboxAction.lease_owner).order_by(OutboxAction.id))).all()]
        inbox_status = Counter({s: n for s, n in (await conn.execute(
            select(InboxEvent.status, func.count()).group_by(InboxEvent.status))).all()})
        bad = [dict(r._mapping) for r in (await conn.execute(select(
            InboxEvent.id, InboxEvent.status, InboxEvent.event, InboxEvent.change_type, InboxEvent.attempts,
            InboxEvent.last_error, InboxEvent.received_at, InboxEvent.next_attempt_at, InboxEvent.lease_owner)
            .where(InboxEvent.status != "done").order_by(InboxEvent.id).limit(50))).all()]
        add_rows: dict[str, dict[str, Any]] = {}
        rows = (await conn.execute(select(InboxEvent.raw, InboxEvent.received_at, InboxEvent.done_at,
                                          InboxEvent.attempts, InboxEvent.status)
                                   .where(InboxEvent.change_type == "add_external_contact"))).all()
        for raw, received_at, done_at, attempts, status in rows:
            start = raw.find("<WelcomeCode><![CDATA[")
            code = raw[start + 22:raw.find("]]>", start)] if start >= 0 else ""
            if code in codes:
                add_rows[code] = {"received_at": received_at, "done_at": done_at, "attempts": attempts,
                                  "status": status}
        chats_service: dict[str, tuple[str, int, set[str]]] = {}
        for chat_id, version, count in (await conn.execute(
                select(GroupChat.chat_id, GroupChat.member_version, GroupChat.member_count))).all():
            members = (await conn.execute(select(GroupMember.member_id).where(
                GroupMember.chat_id == chat_id, GroupMember.left_at.is_(None)))).scalars().all()
            chats_service[chat_id] = (version, count, set(members))
    relation_tags = {}
    for a in workload.adds:
        follow = state.follow(a.userid, a.ext)
        relation_tags[(a.userid, a.ext)] = set(follow.tag_ids) if follow is not None else set()
    tag_ids = {}
    for group in state.tag_groups.values():
        if not group.deleted:
            for tag in state.live_tags(group):
                tag_ids[f"{group.group_name}/{tag.name}"] = tag.id
    chats_wecom = {chat_id: (state.groups[chat_id].member_version, set(state.groups[chat_id].members))
                   for chat_id in workload.joined}
    return Snapshot(welcome_calls, welcomes_to, mark_tags, app_calls, app_delivered, dropped, outbox,
                    inbox_status, bad, add_rows, relation_tags, tag_ids, chats_wecom, chats_service)


def _log_lines(logs: Path) -> Counter[str]:
    """WARNING and worse lines of every incarnation's log, by logger and message."""
    lines: Counter[str] = Counter()
    for path in sorted(logs.glob("*.log")):
        for line in path.read_text(errors="replace").splitlines():
            try:
                data = json.loads(line)
            except ValueError:
                lines[f"(not JSON) {line[:160]}"] += 1
                continue
            lines[f"{data.get('level')} {data.get('logger')}: {str(data.get('msg'))[:160]}"] += 1
    for path in sorted(logs.glob("*.out")):  # stdout/stderr: a crash's traceback ends with its error
        last = [line for line in path.read_text(errors="replace").splitlines() if line.strip()][-1:]
        if last:
            lines[f"(stderr) {last[0][:160]}"] += 1
    return lines


async def chaos_run(cfg: ChaosConfig, db: str, db_url: str, root: Path) -> ChaosResult:
    """The whole run; returns the evidence (the caller judges it)."""
    loop = asyncio.get_running_loop()
    clock = SystemClock()
    began = loop.time()
    load0, cpu0, own0 = os.getloadavg()[0], _children_cpu_s(), time.process_time()
    epoch_offset = clock.now().timestamp() - loop.time()
    sop, mat = write_playbook(root / "playbook", clock.now())
    await prepare_database(db_url)
    state = SandboxState()
    demo = seed_demo(state)
    sandbox, sandbox_url = await start_sandbox(state)
    work = root / "work"
    work.mkdir(exist_ok=True)
    logs = root / "logs"
    spec = ServiceSpec(db_url=db_url, workdir=str(work), sandbox_url=sandbox_url, sop_dir=str(sop),
                       materials_dir=str(mat), port=0, log_path="", control_socket=str(work / "ctl.sock"))
    fleet = Fleet(spec, [chr(ord("a") + n) for n in range(cfg.instances)], logs)
    engine = make_engine(db_url)
    stop_chaos = asyncio.Event()
    try:
        for slot in fleet.slots:
            fleet.start(slot)
        for slot in fleet.slots:
            await fleet.wait_ready(slot.current)
        async with Poster(lambda: [s.url for s in fleet.serving()], [s.url for s in fleet.slots],
                          cfg.seed + 1) as poster:
            driver = QueuingDriver(state, poster.crypto, "http://unused.invalid", clock, seed=cfg.seed + 2)
            workload = Workload(state, demo, driver, poster, cfg.adds, cfg.rate, cfg.seed + 3)
            chaos_task = asyncio.create_task(chaos(fleet, random.Random(cfg.seed), cfg.kill_every_s, stop_chaos))
            chaos_began = loop.time()
            try:
                await workload.run()
            finally:
                stop_chaos.set()
                await chaos_task
            issued = loop.time()
            # One instance (each slot's last incarnation) keeps running until everything settles.
            for slot in fleet.slots:
                if slot.current.exited.is_set():
                    fleet.start(slot)
            acks = asyncio.create_task(workload.acked())
            settled = False
            deadline = issued + cfg.settle_s
            while loop.time() < deadline:
                if acks.done():
                    inbox, outbox = await _counts(engine)
                    if _settled(inbox, outbox):
                        settled = True
                        break
                await asyncio.sleep(0.25)
            settle_s = loop.time() - issued
            if not acks.done():
                acks.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await acks
            elif acks.exception() is not None:
                raise RuntimeError("the driver failed") from acks.exception()
            await asyncio.sleep(0.3)  # a straggling second call would show up here
            snapshot = await _snapshot(state, engine, workload)
    finally:
        stop_chaos.set()
        await fleet.stop_all()
        await engine.dispose()
        await sandbox.cleanup()
    return ChaosResult(cfg, db, workload, fleet, poster, snapshot, settled, settle_s, issued - chaos_began,
                       loop.time() - began, logs, epoch_offset, _children_cpu_s() - cpu0, time.process_time() - own0,
                       (load0, os.getloadavg()[0]), _log_lines(logs))


def _children_cpu_s() -> float:
    """CPU seconds of this process's children that have ended (every killed or stopped incarnation)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime
