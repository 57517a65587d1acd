"""Stopping is bounded.

Every worker loop ends when cancelled, whatever it was doing at that moment: on Python 3.11
``asyncio.wait_for`` returns normally when the cancellation arrives together with the wake-up it
waits for, and a loop wrapping it in ``suppress(TimeoutError)`` would go on forever (a stop hung
in 3 of 42 tries under load). The loops here are cancelled at each step of several iterations,
alone and together with a wake-up; their work is a fake, their waits real but a microsecond
long, so every cancellation point is reached without sleeping.

``Runtime.stop`` waits for the workers until ``[server] stop_timeout_s`` and abandons (and names)
the rest, so a worker that ignores its cancellation cannot keep the process alive.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Column, MetaData, String, Table

from handlers.crm.dropfolder import DropFolder
from scrm.kernel.clock import FakeClock
from scrm.kernel.group_commit import GroupCommitWriter
from scrm.kernel.service import Runtime
from tests.conftest import make_settings

TINY = 1e-6  # a wait's timeout: already over at the loop's next turn
CANCEL_POINTS = 40  # loop turns before the cancellation: every step of several iterations
SETTLE_TURNS = 50  # loop turns a cancelled loop may take to end (it needs a few)


@dataclass
class Worker:
    """A worker loop to cancel: how to start it, and how to wake it (None: it only times out)."""

    start: Callable[[], Coroutine[Any, Any, None]]
    wake: Callable[[], None] | None


@pytest.fixture
async def runtime(sqlite_url: str) -> AsyncIterator[Runtime]:
    rt = Runtime(make_settings(sqlite_url, scheduler={"tick_s": TINY}), clock=FakeClock(), load_playbook=False)
    yield rt
    await rt.engine.dispose()


def _worker(name: str, runtime: Runtime, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Worker:
    """The loop ``name`` of a runtime, its work replaced by a fake that finds nothing to do."""
    if name == "inbox":
        async def no_events(*_: Any) -> list[Any]:
            return []

        monkeypatch.setattr(runtime.inbox, "_claim", no_events)
        return Worker(lambda: runtime.inbox.run(runtime.dispatcher, runtime.handler_context, idle_s=TINY),
                      runtime.inbox.wake)
    if name == "outbox":
        async def no_actions(*_: Any) -> list[Any]:
            return []

        monkeypatch.setattr(runtime.outbox, "_claim_batch", no_actions)
        return Worker(lambda: runtime.outbox.run(idle_s=TINY), runtime.outbox.wake)
    if name == "scheduler":
        async def no_jobs() -> int:
            return 0

        monkeypatch.setattr(runtime.scheduler, "tick", no_jobs)
        return Worker(runtime.scheduler.run, None)
    if name == "playbook-watch":
        async def reload() -> None:
            return None

        monkeypatch.setattr(runtime, "reload_playbook", reload)
        monkeypatch.setattr(runtime.playbook, "changed_on_disk", lambda: False)
        return Worker(lambda: runtime.watch_playbook(poll_s=TINY), runtime._reload_requested.set)
    if name == "crm-dropfolder":
        folder = DropFolder(tmp_path / "drop", runtime.sessions, runtime.inbox, runtime.clock, poll_s=TINY)

        async def nothing_dropped() -> list[Any]:
            return []

        monkeypatch.setattr(folder, "poll", nothing_dropped)
        return Worker(folder.run, None)
    raise AssertionError(name)


async def _cancel_at(start: Callable[[], Coroutine[Any, Any, None]], turns: int,
                     wake: Callable[[], None] | None) -> asyncio.Task[None]:
    """Start a loop, let it run ``turns`` loop turns, then wake it (if given) and cancel it in
    the same turn; returns the task once it ended, or after SETTLE_TURNS if it did not."""
    task = asyncio.create_task(start())
    for _ in range(turns):
        await asyncio.sleep(0)
    if wake is not None:
        wake()
    task.cancel()
    for _ in range(SETTLE_TURNS):
        if task.done():
            break
        await asyncio.sleep(0)
    return task


async def _finish(task: asyncio.Task[None]) -> None:
    """Clean up a loop that survived its cancellation (the bug), so it does not outlive the test."""
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=1)


@pytest.mark.parametrize(("name", "woken"), [
    ("inbox", False), ("inbox", True), ("outbox", False), ("outbox", True), ("scheduler", False),
    ("playbook-watch", False), ("playbook-watch", True), ("crm-dropfolder", False),  # scheduler, folder: sleep only
])
async def test_a_worker_loop_ends_when_cancelled_at_any_point(name: str, woken: bool, runtime: Runtime,
                                                              monkeypatch: pytest.MonkeyPatch,
                                                              tmp_path: Path) -> None:
    worker = _worker(name, runtime, monkeypatch, tmp_path)
    wake = worker.wake if woken else None
    survived = []
    for turns in range(CANCEL_POINTS):
        task = await _cancel_at(worker.start, turns, wake)
        if not task.cancelled():
            survived.append(turns)
            await _finish(task)
    assert survived == [], f"{name} kept running after a cancellation at these turns: {survived}"


# ---------------------------------------------------------------------- the group-commit writer
PROBE = Table("stop_probe", MetaData(), Column("key", String, primary_key=True))


class _FakeTableWriter(GroupCommitWriter):
    """The writer with a fake table: a batch is "written" at once, with no database."""

    async def _insert(self, rows: list[Any]) -> set[Any]:
        await asyncio.sleep(0)
        return {r["key"] for r in rows}


async def _writer_task(writer: GroupCommitWriter) -> asyncio.Task[Any]:
    writer.start()
    (task,) = [t for t in asyncio.all_tasks() if t.get_name() == "group-commit:stop_probe" and not t.done()]
    return task


@pytest.mark.parametrize("woken", [False, True], ids=["timing-out", "woken"])
async def test_the_group_commit_writer_ends_when_cancelled_at_any_point(woken: bool, runtime: Runtime) -> None:
    """Its waits: lingering for more offered rows, and collecting a batch after an awaited put
    (woken there by a row arriving)."""
    survived = []
    for turns in range(CANCEL_POINTS):
        writer = _FakeTableWriter(runtime.engine, PROBE, "key", max_delay_s=TINY, linger_s=TINY)
        task = await _writer_task(writer)
        writer.offer({"key": "offered"}, limit=100)  # a batch that lingers
        put = asyncio.create_task(writer.put({"key": "awaited"}))  # a batch that collects
        for _ in range(turns):
            await asyncio.sleep(0)
        if woken:
            writer.offer({"key": f"more-{turns}"}, limit=100)
        task.cancel()
        for _ in range(SETTLE_TURNS):
            if task.done():
                break
            await asyncio.sleep(0)
        if not task.cancelled():
            survived.append(turns)
            await _finish(task)
        put.cancel()
        await asyncio.wait({put})
    assert survived == [], f"the writer kept running after a cancellation at these turns: {survived}"


# ---------------------------------------------------------------------- Runtime.stop
async def test_stop_is_bounded_when_a_worker_ignores_its_cancellation(sqlite_url: str,
                                                                      caplog: pytest.LogCaptureFixture) -> None:
    runtime = Runtime(make_settings(sqlite_url, server={"stop_timeout_s": 1.0}), clock=FakeClock(),
                      load_playbook=False)
    await runtime.start(workers=True)
    started, release, ignored = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def stubborn() -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            ignored.set()  # swallowed, as wait_for under suppress(TimeoutError) could
        await release.wait()

    runtime._spawn("stubborn", stubborn())
    task = runtime._tasks["stubborn"]
    await started.wait()
    others = [t for name, t in runtime._tasks.items() if name != "stubborn"]
    abandoned = await runtime.stop()
    try:
        assert ignored.is_set()
        assert abandoned == ["stubborn"]
        assert all(t.cancelled() for t in others)  # the well-behaved workers ended in time
        assert any(r.levelno == logging.ERROR and "stubborn" in r.getMessage() for r in caplog.records)
    finally:
        release.set()
        await asyncio.wait({task})


async def test_stop_removes_the_sighup_handler(sqlite_url: str) -> None:
    loop = asyncio.get_running_loop()
    before = signal.getsignal(signal.SIGHUP)
    runtime = Runtime(make_settings(sqlite_url), clock=FakeClock(), load_playbook=False)
    await runtime.start(workers=True)
    assert signal.getsignal(signal.SIGHUP) != before  # the loop's, while the runtime runs
    assert await runtime.stop() == []
    assert signal.getsignal(signal.SIGHUP) == before
    assert not loop.remove_signal_handler(signal.SIGHUP)  # the loop has none left
