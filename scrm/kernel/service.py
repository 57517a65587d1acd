"""The service: config → db → WeCom client → dispatcher (+ features) → workers.

Knows no business feature: ``Runtime`` owns every long-lived object and the background workers
and runs what the composed features (``scrm/main.py``) add — routers in their declared order,
HTTP routes, scheduler jobs, workers, outbox semantics — on the playbook it is given (a
``PlaybookSource``). ``scrm.kernel.http.create_app`` wraps it in the aiohttp application whose
start-up and clean-up start and stop it; the stop is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any

from scrm.adapters.db.engine import make_engine, make_sessionmaker
from scrm.adapters.wecom.crypto import WeComCrypto
from scrm.adapters.wecom.shared_limits import DatabaseCounter, RedisCounter, SharedCounter, SharedLimits
from scrm.kernel import deps
from scrm.kernel.clock import Clock, SystemClock
from scrm.kernel.config import Settings
from scrm.kernel.control import ControlServer, control_socket_path
from scrm.kernel.dispatch import DispatchConfigError, Dispatcher, Router
from scrm.kernel.feature import Feature, event_kinds, routers_of
from scrm.kernel.inbox import Inbox
from scrm.kernel.liveness import Identity, Liveness
from scrm.kernel.outbox import PRIORITY_WELCOME, Outbox
from scrm.kernel.reloadable import NoPlaybook, PlaybookSource, ReloadOutcome
from scrm.kernel.scheduler import Scheduler

log = logging.getLogger("scrm.kernel.service")

class Runtime:
    """Every long-lived object of one service instance, and its background workers."""

    def __init__(self, settings: Settings, *, features: Sequence[Feature] = (), clock: Clock | None = None,
                 playbook: PlaybookSource | None = None, routers: list[Router] | None = None, wecom: Any = None,
                 load_playbook: bool = True) -> None:
        """``features`` in dispatch order and ``playbook`` (``scrm.main.build_runtime`` passes both);
        ``routers`` replaces only their routers (tests of one handler module keep every other hook)."""
        self.settings = settings
        self.features = tuple(features)
        self._closers: list[Callable[[], Awaitable[None]]] = []
        self.clock: Clock = clock or SystemClock()
        self.engine = make_engine(settings.database.url, echo=settings.database.echo,
                                  pool_size=settings.database.pool_size)
        self.sessions = make_sessionmaker(self.engine)
        # One id for every lease this instance takes: the registry releases them if it dies.
        self.identity = Identity.of_this_process()
        owner = self.identity.id
        # Stored internal events are dispatched as the typed classes the features declare.
        self.inbox = Inbox(self.engine, self.sessions, settings.inbox, self.clock, kinds=event_kinds(self.features),
                           owner=owner)
        self.scheduler = Scheduler(self.engine, self.sessions, settings.scheduler, self.clock, self.inbox,
                                   owner=owner)
        self.playbook: PlaybookSource = playbook if playbook is not None else NoPlaybook()
        if load_playbook:
            self.playbook.load()
        self.wecom = wecom if wecom is not None else self._make_wecom_client()
        self.outbox = Outbox(self.engine, self.sessions, settings.outbox, self.clock, self.wecom, owner=owner)
        self.liveness = Liveness(self.engine, self.clock, settings.liveness, self.identity,
                                 Liveness.tables(settings.inbox.lease_s, settings.outbox.lease_s,
                                                 settings.scheduler.lease_s),
                                 on_release=self._claims_released, on_live=self._instances_live)
        for feature in self.features:  # the semantics of the APIs each feature queues
            if feature.outbox is not None:
                feature.outbox(self)
        # Handlers add outbox rows in their transaction; wake the sender right after commit.
        self.inbox.after_commit.append(self.outbox.wake)
        self.routers = routers if routers is not None else routers_of(self.features)
        self.dispatcher = Dispatcher(self.routers, check=deps.mismatches)
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._reload_requested = asyncio.Event()
        self._sighup: tuple[asyncio.AbstractEventLoop, Any] | None = None  # (loop, previous handler)
        self._reload_lock = asyncio.Lock()
        self.control: ControlServer | None = None
        self._registered = False

    def _claims_released(self) -> None:
        """A dead instance's rows are claimable now: look at once (welcomes first, by priority)."""
        self.inbox.wake()
        self.outbox.wake()

    def _instances_live(self, live: int) -> None:
        """WeCom counts per-API calls per corp: with ``live`` instances each takes 1/live of it."""
        limiter = getattr(self.wecom, "limiter", None)
        if limiter is not None:
            limiter.set_instances(live)

    def _make_wecom_client(self) -> Any:
        from scrm.adapters.wecom.api import WeComClient
        from scrm.adapters.wecom.ratelimit import RateLimiter
        from scrm.adapters.wecom.token import DbTokenStore, MemoryTokenStore, TokenStore

        # PostgreSQL: instances share one token through the database. SQLite means one
        # instance, and a token write from inside a handler's transaction would wait on that
        # transaction's own write lock, so the token lives in memory there.
        store: TokenStore = (MemoryTokenStore(self.clock) if self.settings.database.is_sqlite
                             else DbTokenStore(self.sessions, self.clock))
        limiter = RateLimiter.from_settings(self.clock, self.settings.wecom, shared=self._shared_limits())
        return WeComClient(self.settings.wecom, token_store=store, clock=self.clock, limiter=limiter)

    def _shared_limits(self) -> SharedLimits | None:
        """The count of per-member app messages every instance shares ([wecom] shared_limits)."""
        kind = self.settings.wecom.shared_limits
        if kind == "off":
            return None
        counter: SharedCounter = (RedisCounter(self.settings.wecom.redis_url) if kind == "redis"
                                  else DatabaseCounter(self.engine))
        self._closers.append(counter.close)
        return SharedLimits(counter)

    def handler_context(self) -> dict[str, Any]:
        """What every handler may ask for, besides the per-event names the inbox adds."""
        return deps.as_context(deps.ServiceDeps(clock=self.clock, settings=self.settings, inbox=self.inbox,
                                                outbox=self.outbox, wecom=self.wecom, scheduler=self.scheduler,
                                                playbook=self.playbook.current))

    def crypto(self) -> WeComCrypto:
        w = self.settings.wecom
        return WeComCrypto(w.token.get_secret_value(), w.encoding_aes_key.get_secret_value(), w.corp_id)

    def _spawn(self, name: str, coro: Coroutine[Any, Any, None]) -> None:
        self._tasks[name] = asyncio.create_task(coro, name=name)

    def require_playbook(self) -> None:
        """Refuse to run handlers that need the playbook when none is loaded: a handler never sees
        ``playbook=None`` (a service without a playbook runs only handlers that ask for none)."""
        if self.playbook.current is not None:
            return
        needy = [route.name for router in self.routers for route in router.routes if "playbook" in route.params]
        if needy:
            raise DispatchConfigError(f"{needy[0]} needs the playbook, and this service has none loaded "
                                      f"({len(needy)} handler(s) do): load it, or compose without them")

    async def start(self, *, workers: bool = True) -> None:
        self.require_playbook()
        self.inbox.writer.start()
        if workers:
            # Join the registry first: a restart releases its killed predecessor's claims before
            # the workers look for work, so those rows are taken over now, not in a minute.
            try:
                await self.liveness.register()
            except Exception:  # a busy database must not keep the service down: the beats retry
                log.exception("joining the registry of live instances failed; the next heartbeat retries")
            self._registered = True
            self._spawn("liveness", self.liveness.run())
            self._spawn("inbox-worker", self.inbox.run(self.dispatcher, self.handler_context))
            # Welcome codes live 20 s: their own lane never waits behind bulk sends.
            self._spawn("outbox-priority", self.outbox.run(max_priority=PRIORITY_WELCOME))
            self._spawn("outbox-worker", self.outbox.run())
            self._spawn("scheduler", self.scheduler.run())
            self._spawn("playbook-watch", self.watch_playbook())
            self._listen_sighup()
            self.control = ControlServer(control_socket_path(self.settings), self.playbook, self.reload_playbook)
            await self.control.start()
            for feature in self.features:
                for name, coro in (feature.workers(self) if feature.workers is not None else {}).items():
                    self._spawn(name, coro)
        await self.register_jobs()
        log.info("runtime started", extra={"database": self.settings.database.url.split("://")[0],
                                           "workers": sorted(self._tasks)})

    # ------------------------------------------------------------------ playbook reloads
    async def register_jobs(self) -> None:
        """(Re-)register every feature's scheduler jobs from the current playbook and settings."""
        for feature in self.features:
            if feature.jobs is not None:
                await feature.jobs(self)

    async def reload_playbook(self) -> ReloadOutcome:
        """Reload sop/ and materials/; on success re-register jobs. A refused one keeps the last good."""
        async with self._reload_lock:  # the file watcher, SIGHUP and the control socket may coincide
            outcome = self.playbook.reload()
            if outcome.applied:
                await self.register_jobs()
            return outcome

    def _listen_sighup(self) -> None:
        import signal

        self._reload_requested = asyncio.Event()
        loop = asyncio.get_running_loop()
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            previous = signal.getsignal(signal.SIGHUP)
            loop.add_signal_handler(signal.SIGHUP, self._reload_requested.set)
            self._sighup = (loop, previous)

    def _unlisten_sighup(self) -> None:
        """Remove the SIGHUP handler on stop: it would outlive the runtime in the loop."""
        import signal

        if self._sighup is None:
            return
        loop, previous = self._sighup
        self._sighup = None
        loop.remove_signal_handler(signal.SIGHUP)
        if previous is not None:  # remove_signal_handler() resets to the default, not to what was there
            signal.signal(signal.SIGHUP, previous)

    async def watch_playbook(self, poll_s: float = 5.0) -> None:
        """Reload when the playbook files change, or on SIGHUP (`scrm sop reload` asks directly)."""
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(poll_s):  # not wait_for: on 3.11 it can swallow a stop
                    await self._reload_requested.wait()
            try:
                if self._reload_requested.is_set() or self.playbook.changed_on_disk():
                    self._reload_requested.clear()
                    await self.reload_playbook()
            except Exception:
                log.exception("playbook reload failed; keeping the last good version")

    def workers_alive(self) -> dict[str, bool]:
        alive = {name: not task.done() for name, task in self._tasks.items()}
        alive["group-commit-writer"] = self.inbox.writer.running
        return alive

    async def stop(self, timeout_s: float | None = None) -> list[str]:
        """Stop the workers, flush the writer, close the WeCom client and the database pool.

        Bounded: the workers get ``timeout_s`` (default ``[server] stop_timeout_s``) to end, then
        the writer as long to flush (its own allowance: a stuck worker must not cost the queued
        rows). What still runs then (it swallowed its cancellation, or hangs in a call) is
        abandoned and named in the log, so a stop always ends. Returns the abandoned names.
        """
        timeout = self.settings.server.stop_timeout_s if timeout_s is None else timeout_s
        self._unlisten_sighup()
        tasks, self._tasks = self._tasks, {}
        for task in tasks.values():
            task.cancel()
        abandoned = await _wait_or_abandon(tasks, timeout)
        if self.control is not None:
            await self.control.stop()
            self.control = None
        writer = asyncio.create_task(self.inbox.writer.stop(), name="group-commit-writer")
        recorder = asyncio.create_task(self.outbox.flush(), name="outbox-recorder")
        abandoned += await _wait_or_abandon({"group-commit-writer": writer, "outbox-recorder": recorder}, timeout)
        if self._registered:
            self._registered = False
            leave = asyncio.create_task(self.liveness.leave(), name="leave-registry")
            abandoned += await _wait_or_abandon({"leave-registry": leave}, timeout)
        if abandoned:
            log.error("runtime stop: abandoned what did not finish in time: %s", ", ".join(abandoned),
                      extra={"abandoned": abandoned})
        close = getattr(self.wecom, "close", None)
        if close is not None:
            await close()
        for closer in self._closers:
            await closer()
        await self.engine.dispose()
        log.info("runtime stopped")
        return abandoned


async def _wait_or_abandon(tasks: dict[str, asyncio.Task[None]], timeout_s: float) -> list[str]:
    """Wait up to ``timeout_s`` for ``tasks``; returns the names of those still running.

    asyncio.wait neither raises the tasks' errors nor swallows our own cancellation. A task left
    behind is cancelled once more (it may have swallowed the first) but no longer waited for.
    """
    if not tasks:
        return []
    _, pending = await asyncio.wait(tasks.values(), timeout=timeout_s)
    for name, task in tasks.items():
        if task.done() and not task.cancelled() and task.exception() is not None:
            log.error("%s failed", name, exc_info=task.exception())
        if task in pending:
            task.cancel()
    return sorted(name for name, task in tasks.items() if task in pending)
