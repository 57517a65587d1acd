"""The service instances of a chaos run: child processes ("spawn") on fixed ports, killed with
SIGKILL and started again at once on the same port and database.

A slot is one address (a fixed port) behind the load balancer; its incarnations follow each
other. A killed incarnation is reaped at once (``is_alive`` waits for it), as a supervisor
would: an unreaped child stays a zombie whose ``/proc/<pid>/stat`` still names it, and the next
incarnation would then not see its predecessor as gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing as mp
import os
import signal
import socket
from dataclasses import dataclass, field, replace
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from multiprocessing.synchronize import Event as MpEvent
from pathlib import Path

from tests.chaos.service import HOST, ServiceSpec, service_main
from tests.support.processes import proc_cpu_s

# A start that takes longer than this is a failure of the run, not chaos.
START_TIMEOUT_S = 60.0



def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


@dataclass
class Incarnation:
    """One child process of a slot."""

    slot: str
    number: int
    proc: BaseProcess
    conn: Connection
    stop: MpEvent
    log_path: Path
    started_at: float  # loop time
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    ready_at: float | None = None
    startup_cpu_s: float | None = None  # CPU spent from spawn to listening (imports, start-up)
    cpu_s: float | None = None  # CPU spent in all, read just before it was killed or stopped
    killed_at: float | None = None
    stopping: bool = False  # asked to stop cleanly (the end of the run)
    exited: asyncio.Event = field(default_factory=asyncio.Event)
    exitcode: int | None = None

    @property
    def startup_s(self) -> float | None:
        return None if self.ready_at is None else self.ready_at - self.started_at

    @property
    def serving(self) -> bool:
        return self.ready.is_set() and self.killed_at is None and not self.stopping and not self.exited.is_set()


@dataclass
class Slot:
    name: str
    port: int
    spec: ServiceSpec
    incarnations: list[Incarnation] = field(default_factory=list)

    @property
    def current(self) -> Incarnation:
        return self.incarnations[-1]

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}/wecom/callback"


class Fleet:
    """Start, kill and restart the service instances; tell which are serving."""

    def __init__(self, spec: ServiceSpec, names: list[str], logs: Path) -> None:
        self.ctx = mp.get_context("spawn")
        self.logs = logs
        logs.mkdir(parents=True, exist_ok=True)
        self.slots = []
        for name in names:
            port = free_port()
            self.slots.append(Slot(name, port, replace(spec, port=port, control_socket=str(
                Path(spec.control_socket).with_name(f"ctl-{name}.sock")))))
        self.loop = asyncio.get_running_loop()
        self.kills: list[tuple[float, str, int]] = []  # (loop time, slot, incarnation number)
        self.crashes: list[Incarnation] = []  # exits nobody asked for
        self._watchers: set[asyncio.Task[None]] = set()

    def all_incarnations(self) -> list[Incarnation]:
        return [inc for slot in self.slots for inc in slot.incarnations]

    def serving(self) -> list[Slot]:
        return [slot for slot in self.slots if slot.incarnations and slot.current.serving]

    def start(self, slot: Slot) -> Incarnation:
        number = len(slot.incarnations)
        log_path = self.logs / f"{slot.name}-{number:02d}.log"
        parent_conn, child_conn = self.ctx.Pipe(duplex=False)
        stop = self.ctx.Event()
        spec = replace(slot.spec, log_path=str(log_path))
        proc = self.ctx.Process(target=service_main, args=(spec, child_conn, stop), daemon=True,
                                name=f"scrm-chaos-{slot.name}-{number}")
        started = self.loop.time()
        proc.start()
        child_conn.close()
        inc = Incarnation(slot.name, number, proc, parent_conn, stop, log_path, started)
        slot.incarnations.append(inc)
        task = asyncio.create_task(self._watch(inc))
        self._watchers.add(task)
        task.add_done_callback(self._watchers.discard)
        return inc

    async def _watch(self, inc: Incarnation) -> None:
        """Note when the incarnation listens, and when (and how) it ends."""
        while True:
            if not inc.ready.is_set() and inc.conn.poll():
                with contextlib.suppress(EOFError, OSError):
                    inc.conn.recv()
                    inc.ready_at = self.loop.time()
                    inc.startup_cpu_s = proc_cpu_s(inc.proc.pid)
                    inc.ready.set()
            if not inc.proc.is_alive():  # reaps it
                break
            await asyncio.sleep(0.02)
        inc.exitcode = inc.proc.exitcode
        inc.exited.set()
        inc.conn.close()
        if inc.killed_at is None and (not inc.stopping or inc.exitcode != 0):
            self.crashes.append(inc)

    async def kill(self, slot: Slot) -> Incarnation:
        """SIGKILL the slot's incarnation, reap it, start the next one at once."""
        inc = slot.current
        inc.killed_at = self.loop.time()
        self.kills.append((inc.killed_at, slot.name, inc.number))
        pid = inc.proc.pid
        assert pid is not None
        inc.cpu_s = proc_cpu_s(pid)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        await inc.exited.wait()  # reaped by its watcher (waitpid): no zombie left behind
        return self.start(slot)

    async def wait_ready(self, inc: Incarnation, timeout_s: float = START_TIMEOUT_S) -> None:
        ready = asyncio.create_task(inc.ready.wait())
        exited = asyncio.create_task(inc.exited.wait())
        try:
            await asyncio.wait([ready, exited], timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
        finally:
            ready.cancel()
            exited.cancel()
        if not inc.ready.is_set():
            raise RuntimeError(f"service {inc.slot}#{inc.number} did not start in {timeout_s:.0f} s "
                               f"(exit code {inc.proc.exitcode}); see {inc.log_path}")

    async def stop_all(self, timeout_s: float = 20.0) -> None:
        """A clean stop of every running incarnation (SIGKILL after ``timeout_s``)."""
        running = [slot.current for slot in self.slots if slot.incarnations and not slot.current.exited.is_set()]
        for inc in running:
            inc.cpu_s = proc_cpu_s(inc.proc.pid)
            inc.stopping = True
            inc.stop.set()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                for inc in running:
                    await inc.exited.wait()
        for inc in running:
            if inc.proc.is_alive() and inc.proc.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(inc.proc.pid, signal.SIGKILL)
                inc.proc.join(5)
        for task in list(self._watchers):
            task.cancel()
