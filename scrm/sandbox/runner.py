"""``scrm serve --sandbox``: the service and the built-in WeCom sandbox in one process.

The sandbox listens on ``server.port + 1`` and the service's WeCom settings are pointed at it
(corp id, secret, callback token and key of the sandbox tenant), so nothing needs credentials.
With ``demo`` a short scripted stream of customer actions plays against the service: people
add client managers through channel QR codes, join community groups, one customer leaves, an
admin adds a tag — the log shows events arriving, welcome messages leaving and the outbox
draining.

The sandbox tenant lives in memory and starts fresh every run, so the service's database must
too: ids it kept from an earlier run (corp tags, uploaded media, contact ways) name nothing in
the new tenant (``40068 invalid tag_id``, ``40007 invalid media_id``). A sandbox run therefore
never uses ``[database]`` (it must not write demo data into a real database either): it
recreates its own SQLite file, ``var/sandbox/scrm.db`` under the working directory, at every
start. The file stays after the run for a look, and can be read while it runs::

    SCRM_DATABASE__URL=sqlite+aiosqlite:///var/sandbox/scrm.db scrm outbox list
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

from aiohttp import web
from pydantic import SecretStr

from scrm.adapters.db import migrate
from scrm.adapters.wecom.crypto import WeComCrypto
from scrm.kernel.clock import Clock, SystemClock
from scrm.kernel.config import Settings
from scrm.kernel.http import create_app
from scrm.kernel.service import Runtime
from scrm.sandbox import SANDBOX_AES_KEY, SANDBOX_AGENT_ID, SANDBOX_CORP_ID, SANDBOX_SECRET, SANDBOX_TOKEN
from scrm.sandbox.demo import DemoIds, seed_demo
from scrm.sandbox.driver import CallbackDriver
from scrm.sandbox.server import SandboxServer
from scrm.sandbox.state import SandboxState

log = logging.getLogger("scrm.sandbox.runner")

# The composed service for these settings and clock (``scrm.main.build_runtime``): the sandbox
# knows no feature and no playbook itself.
RuntimeFactory = Callable[[Settings, Clock], Runtime]

#: Where a sandbox run keeps its database, under the working directory (git ignores ``/var/``).
SANDBOX_DATA_DIR = Path("var") / "sandbox"
_DB_FILE = "scrm.db"
# SQLite's companions of a database file: a stale journal or WAL must not replay into the new one.
_DB_SUFFIXES = ("", "-wal", "-shm", "-journal")


def sandbox_database_url(data_dir: Path = SANDBOX_DATA_DIR) -> str:
    """The SQLite URL of the sandbox run's database in ``data_dir``."""
    return f"sqlite+aiosqlite:///{(data_dir / _DB_FILE).resolve()}"


def fresh_database(data_dir: Path = SANDBOX_DATA_DIR) -> str:
    """Delete the previous run's database in ``data_dir``; returns the URL of the new one.

    Only the database's own files go, never the folder: ``data_dir`` may be anyone's folder.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    for suffix in _DB_SUFFIXES:
        (data_dir / (_DB_FILE + suffix)).unlink(missing_ok=True)
    return sandbox_database_url(data_dir)


def sandbox_settings(settings: Settings, api_base: str) -> Settings:
    """The settings with [wecom] pointed at the sandbox tenant."""
    wecom = settings.wecom.model_copy(update={
        "corp_id": SANDBOX_CORP_ID, "agent_id": SANDBOX_AGENT_ID, "secret": SecretStr(SANDBOX_SECRET),
        "token": SecretStr(SANDBOX_TOKEN), "encoding_aes_key": SecretStr(SANDBOX_AES_KEY), "api_base": api_base,
    })
    return settings.model_copy(update={"wecom": wecom})


async def demo_script(driver: CallbackDriver, ids: DemoIds, pause_s: float = 3.0) -> None:
    """A few minutes of a branch's day, played slowly enough to read in the log."""
    steps: list[tuple[str, Any]] = [
        ("a payroll customer scans the onboarding QR code",
         lambda: driver.add_external_contact("zhangwei", name="钱多多", state="payroll-onboarding")),
        ("a lobby visitor adds a manager",
         lambda: driver.add_external_contact("lina", name="林小雨", state="lobby-chengxi")),
        ("a salon guest adds a wealth manager (manager must confirm)",
         lambda: driver.add_external_contact("chenjing", name="高先生", state="wealth-salon", half=True)),
        ("two customers join the payroll group by QR code",
         lambda: driver.join_group(ids.groups["代发工资群"], [ids.customers["赵敏"], ids.customers["刘洋"]],
                                   join_scene=3)),
        ("a customer removes her manager", lambda: driver.del_follow_user("lina", ids.customers["周杰"])),
        ("the admin adds an interest tag", lambda: driver.create_tag("兴趣", "养老")),
    ]
    for title, step in steps:
        await asyncio.sleep(pause_s)
        outcome = await step()
        log.info("demo: %s", title, extra={"delivered": outcome.delivered, "attempts": outcome.attempts})
    log.info("demo: script finished; the service keeps running (Ctrl-C to stop)")


async def prepare_features(runtime: Runtime) -> None:
    """Let each feature set the new sandbox tenant up as its sync commands would against WeCom
    (the contacts feature creates the channel QR codes, so `scrm channels list` shows real ones)."""
    for feature in runtime.features:
        if feature.sandbox is not None:
            await feature.sandbox(runtime)


async def run_async(settings: Settings, *, build: RuntimeFactory, demo: bool = True,
                    clock: Clock | None = None,
                    stop: asyncio.Event | None = None, demo_pause_s: float = 3.0,
                    data_dir: Path = SANDBOX_DATA_DIR, existing: int = 0) -> None:
    """Serve the sandbox tenant and the service on a fresh database until ``stop`` is set
    (or SIGINT/SIGTERM); every run starts from the same state, so it shows the same demo.
    ``existing``: the corp also holds that many more relations from before the service (its
    first start backfills them, with the demo bank's own customers and groups)."""
    clock = clock or SystemClock()
    stop = stop or asyncio.Event()
    host, port = settings.server.host, settings.server.port
    state = SandboxState()
    ids = seed_demo(state)
    if existing > 0:
        from scrm.sandbox.seed import seed_existing

        seed_existing(state, clock.now().timestamp(), relations=existing, groups=max(1, existing // 200), ways=3)
    settings = sandbox_settings(settings, f"http://{host}:{port + 1}")
    settings = settings.model_copy(update={
        "database": settings.database.model_copy(update={"url": fresh_database(data_dir)})})
    await migrate.upgrade_async(settings.database.url)
    log.info("sandbox mode: a new database for this run: %s", data_dir / _DB_FILE)
    async with serving(SandboxServer(state, clock).app, host, port + 1):
        runtime = build(settings, clock)
        async with serving(create_app(runtime), host, port):
            log.info("sandbox mode: service on http://%s:%d, WeCom sandbox on http://%s:%d",
                     host, port, host, port + 1)
            await prepare_features(runtime)
            crypto = WeComCrypto(SANDBOX_TOKEN, SANDBOX_AES_KEY, SANDBOX_CORP_ID)
            async with CallbackDriver(state, crypto, f"http://{host}:{port}/wecom/callback", clock) as driver:
                with stop_on_signals(asyncio.get_running_loop(), stop):
                    await _play_until(stop, demo_script(driver, ids, demo_pause_s) if demo else None)


@contextlib.asynccontextmanager
async def serving(app: web.Application, host: str, port: int) -> AsyncIterator[None]:
    """``app`` on ``host:port`` for the duration of the block (its clean-up runs on the way out)."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        yield
    finally:
        await runner.cleanup()


@contextlib.contextmanager
def stop_on_signals(loop: asyncio.AbstractEventLoop, stop: asyncio.Event) -> Iterator[None]:
    """SIGINT and SIGTERM set ``stop`` while the block runs, and only then: handlers left behind
    would make the process (a test session, an embedding program) ignore Ctrl-C and SIGTERM."""
    # The loop's remove_signal_handler() resets to the default, not to what was there before
    # (asyncio.run's own Ctrl-C handler): the previous handlers are put back by hand.
    previous: dict[signal.Signals, Any] = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        # Not available on Windows' loop, nor outside the main thread.
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            before = signal.getsignal(sig)
            loop.add_signal_handler(sig, stop.set)
            previous[sig] = before
    try:
        yield
    finally:
        for sig, before in previous.items():
            loop.remove_signal_handler(sig)
            if before is not None:  # None: set outside Python, nothing to put back
                signal.signal(sig, before)


async def _play_until(stop: asyncio.Event, script: Coroutine[Any, Any, None] | None) -> None:
    """Run the demo script (if any) until ``stop``; the script ends with the run."""
    task = asyncio.create_task(script, name="sandbox-demo") if script is not None else None
    try:
        await stop.wait()
    finally:
        if task is not None:
            task.cancel()
            # wait() rather than awaiting the task: our own cancellation must not be mistaken
            # for the script's and swallowed.
            await asyncio.wait({task})
            if not task.cancelled() and task.exception() is not None:
                log.error("demo script failed", exc_info=task.exception())


def run_with_sandbox(settings: Settings, *, build: RuntimeFactory, demo: bool = True, existing: int = 0) -> None:
    asyncio.run(run_async(settings, build=build, demo=demo, existing=existing))
