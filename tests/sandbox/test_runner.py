"""`scrm serve --sandbox` end to end: the demo script's events arrive and are processed, every
run alike, and the run leaves no signal handlers behind."""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.contacts.models import ChannelWay, Member
from scrm.adapters.db.engine import make_engine, make_sessionmaker
from scrm.kernel.clock import Clock, FakeClock
from scrm.kernel.config import Settings
from scrm.kernel.models import InboxEvent, OutboxAction
from scrm.kernel.service import Runtime
from scrm.main import build_runtime
from scrm.sandbox.runner import run_async, sandbox_database_url
from tests.conftest import make_settings
from tests.support.service import wait_until


def _build(settings: Settings, clock: Clock) -> Runtime:
    """The composed service, as `scrm serve --sandbox` builds it."""
    return build_runtime(settings, clock=clock)


ROOT = Path(__file__).resolve().parents[2]
SCRIPTED_CALLBACKS = 6  # the steps of demo_script
DAYTIME = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai, outside quiet hours


def free_port_pair() -> int:
    """A port p with p+1 also free (service on p, sandbox on p+1)."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        with socket.socket() as s2:
            try:
                s2.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return int(port)
    raise RuntimeError("no free port pair")


def demo_settings(db_url: str) -> Settings:
    return make_settings(db_url, server={"port": free_port_pair()},
                         playbook={"sop_dir": ROOT / "sop", "materials_dir": ROOT / "materials"})


@dataclass(frozen=True)
class DemoRun:
    """What one sandbox run did, read from its database once the demo settled."""

    outbox: Counter[tuple[str, str, str | None]]  # (api, status, last_error) → how many
    ways: list[tuple[str, str, str | None]]  # (channel key, status, QR code)
    callbacks: int  # WeCom events received
    welcomes: list[str]  # the text of every welcome message queued
    leads: dict[str, str | None]  # member → team lead, as the staff directory synced them


async def _settled(sessions: async_sessionmaker[AsyncSession], task: asyncio.Task[None],
                   caplog: pytest.LogCaptureFixture) -> bool:
    """The demo script played, and the events it caused and the actions they queued are finished.

    The script's end is read from the log: the database alone cannot tell this run's rows
    from a previous run's."""
    if task.done():
        task.result()  # surface a crash
    if not any(r.getMessage().startswith("demo: script finished") for r in caplog.records):
        return False
    async with sessions() as s:
        statuses = set((await s.scalars(select(InboxEvent.status))).all())
        unsent = await s.scalar(select(func.count()).where(OutboxAction.status.in_(("pending", "sending"))))
    return statuses <= {"done", "dead"} and unsent == 0


async def _read(sessions: async_sessionmaker[AsyncSession]) -> DemoRun:
    async with sessions() as s:
        actions = (await s.execute(select(OutboxAction.payload, OutboxAction.status, OutboxAction.last_error))).all()
        ways = (await s.execute(select(ChannelWay.key, ChannelWay.status, ChannelWay.qr_code))).all()
        events = (await s.scalars(select(InboxEvent.source))).all()
        leads = {u: lead for u, lead in (await s.execute(select(Member.userid, Member.team_lead))).all()}
    welcomes = [str(p["body"].get("text", {}).get("content", "")) for p, _, _ in actions
                if p["api"] == "externalcontact/send_welcome_msg"]
    return DemoRun(Counter((str(p["api"]), st, err) for p, st, err in actions),
                   sorted((k, st, qr) for k, st, qr in ways), events.count("wecom"), welcomes, leads)


async def run_demo(settings: Settings, caplog: pytest.LogCaptureFixture) -> DemoRun:
    """One `scrm serve --sandbox` run in this working directory, stopped once its demo settled."""
    caplog.clear()
    caplog.set_level(logging.INFO, logger="scrm.sandbox.runner")
    stop = asyncio.Event()
    # A fake clock: the manager's notice is not held back by quiet hours, whenever the test runs.
    task = asyncio.create_task(run_async(settings, build=_build, demo=True, clock=FakeClock(DAYTIME), stop=stop,
                                         demo_pause_s=0.01))
    engine = None
    try:
        # Up means this run's database is made (the previous run's file is still there before).
        await wait_until(lambda: _service_up(task, settings.server.port), timeout_s=90)
        engine = make_engine(sandbox_database_url())
        sessions = make_sessionmaker(engine)
        await wait_until(lambda: _settled(sessions, task, caplog), timeout_s=90)  # generous: CI machines are shared
        return await _read(sessions)
    finally:
        stop.set()
        await task
        if engine is not None:
            await engine.dispose()


async def _service_up(task: asyncio.Task[None], port: int) -> bool:
    if task.done():
        task.result()
    try:
        async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}/healthz") as resp:
            return resp.status == 200
    except aiohttp.ClientError:
        return False


async def _count_events(db_url: str) -> int:
    engine = make_engine(db_url)
    try:
        async with engine.connect() as conn:
            return int((await conn.execute(select(func.count()).select_from(InboxEvent))).scalar_one())
    finally:
        await engine.dispose()


async def test_sandbox_mode_runs_the_demo_through_the_pipeline(sqlite_url: str,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    run = await run_demo(demo_settings(sqlite_url), caplog)
    assert run.callbacks == SCRIPTED_CALLBACKS
    # The shipped channels name the demo tenant's staff: every QR code exists in the sandbox.
    assert {k for k, _, _ in run.ways} == {"payroll-onboarding", "lobby-chengxi", "wealth-salon", "cc-campaign-q4"}
    assert all(status == "active" and qr for _, status, qr in run.ways)
    # Welcomes (the payroll one with an uploaded mini-program cover) and channel tags went out.
    assert run.outbox[("externalcontact/send_welcome_msg", "sent", None)] == 3
    assert run.outbox[("externalcontact/mark_tag", "sent", None)] == 3
    assert {status for _, status, _ in run.outbox} == {"sent"}
    # The staff directory was synced from the sandbox's address book at start: welcomes carry the
    # managers' names, and their cards would escalate to their team leads.
    assert sorted(w for w in run.welcomes if "张伟" in w or "李娜" in w or "陈静" in w) == sorted(run.welcomes)
    assert len(run.welcomes) == 3
    assert run.leads["zhangwei"] == run.leads["lina"] == "wangqiang" and run.leads["chenjing"] == "sunhui"
    # Demo data never lands in the configured database.
    assert await _count_events(sqlite_url) == 0


async def test_a_second_run_shows_what_the_first_did(sqlite_url: str, caplog: pytest.LogCaptureFixture) -> None:
    """The second run once failed: its new tenant did not know the first run's tag and media
    ids, still in the database (40068 on every mark_tag, 40007 on the payroll welcome)."""
    first = await run_demo(demo_settings(sqlite_url), caplog)
    second = await run_demo(demo_settings(sqlite_url), caplog)
    assert second == first
    assert second.callbacks == SCRIPTED_CALLBACKS
    assert second.outbox[("externalcontact/send_welcome_msg", "sent", None)] == 3
    assert second.outbox[("externalcontact/mark_tag", "sent", None)] == 3
    assert {status for _, status, _ in second.outbox} == {"sent"}  # no 40007, no 40068


async def test_the_run_removes_its_signal_handlers(sqlite_url: str) -> None:
    """A test session once ignored SIGTERM and Ctrl-C after a sandbox run: its handlers stayed."""
    loop = asyncio.get_running_loop()
    sigs = (signal.SIGINT, signal.SIGTERM)
    before = {sig: signal.getsignal(sig) for sig in sigs}
    stop = asyncio.Event()
    task = asyncio.create_task(run_async(demo_settings(sqlite_url), build=_build, demo=False, stop=stop))
    await wait_until(lambda: _handlers_replaced(task, before), timeout_s=90)
    stop.set()
    await task
    assert {sig: signal.getsignal(sig) for sig in sigs} == before
    assert not any(loop.remove_signal_handler(sig) for sig in sigs)  # the loop has none left


async def _handlers_replaced(task: asyncio.Task[None], before: dict[signal.Signals, Any]) -> bool:
    """While the run lasts, the loop's handlers stand in for the previous ones."""
    if task.done():
        task.result()
    return all(signal.getsignal(sig) != handler for sig, handler in before.items())
