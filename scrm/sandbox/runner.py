"""``scrm serve --sandbox``: the service and the built-in WeCom sandbox in one process.

The sandbox listens on ``server.port + 1`` and the service's WeCom settings are pointed at it
(corp id, secret, callback token and key of the sandbox tenant), so nothing needs credentials.
With ``demo`` a short scripted stream of customer actions plays against the service: people
add client managers through channel QR codes, join community groups, one customer leaves, an
admin adds a tag — the log shows events arriving, welcome messages leaving and the outbox
draining (``scrm outbox list`` in another terminal shows the same).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from typing import Any

from aiohttp import web
from pydantic import SecretStr

from scrm.app import Runtime, create_app
from scrm.clock import Clock, SystemClock
from scrm.config import Settings
from scrm.db import migrate
from scrm.sandbox import SANDBOX_AES_KEY, SANDBOX_AGENT_ID, SANDBOX_CORP_ID, SANDBOX_SECRET, SANDBOX_TOKEN
from scrm.sandbox.demo import DemoIds, seed_demo
from scrm.sandbox.driver import CallbackDriver
from scrm.sandbox.server import SandboxServer
from scrm.sandbox.state import SandboxState
from scrm.wecom.crypto import WeComCrypto

log = logging.getLogger("scrm.sandbox.runner")


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


async def sync_demo_channels(runtime: Runtime) -> None:
    """Create the playbook's channel QR codes in the sandbox tenant, as `scrm channels sync`
    would against WeCom, so `scrm channels list` shows real codes in sandbox mode."""
    from scrm.lifecycle.channels import sync_channels

    playbook = runtime.playbook.current
    if playbook is None:
        return
    results = await sync_channels(runtime.sessions, runtime.wecom, playbook, runtime.clock,
                                  runtime.settings.playbook.materials_dir)
    for r in results:
        level = logging.WARNING if r.action == "error" else logging.INFO
        log.log(level, "sandbox: channel %s %s %s", r.key, r.action, r.message)


async def run_async(settings: Settings, *, demo: bool = True, clock: Clock | None = None,
                    stop: asyncio.Event | None = None, demo_pause_s: float = 3.0) -> None:
    clock = clock or SystemClock()
    host, port = settings.server.host, settings.server.port
    state = SandboxState()
    ids = seed_demo(state)
    sandbox = SandboxServer(state, clock)
    sandbox_runner = web.AppRunner(sandbox.app, access_log=None)
    await sandbox_runner.setup()
    await web.TCPSite(sandbox_runner, host, port + 1).start()
    settings = sandbox_settings(settings, f"http://{host}:{port + 1}")
    if settings.database.is_sqlite:
        await migrate.upgrade_async(settings.database.url)
    runtime = Runtime(settings, clock=clock)
    runner = web.AppRunner(create_app(runtime), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    log.info("sandbox mode: service on http://%s:%d, WeCom sandbox on http://%s:%d", host, port, host, port + 1)
    await sync_demo_channels(runtime)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    crypto = WeComCrypto(SANDBOX_TOKEN, SANDBOX_AES_KEY, SANDBOX_CORP_ID)
    driver = CallbackDriver(state, crypto, f"http://{host}:{port}/wecom/callback", clock)
    script = asyncio.create_task(demo_script(driver, ids, demo_pause_s)) if demo else None
    try:
        await stop.wait()
    finally:
        if script is not None:
            script.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await script
        await driver.close()
        await runner.cleanup()
        await sandbox_runner.cleanup()


def run_with_sandbox(settings: Settings, *, demo: bool = True) -> None:
    asyncio.run(run_async(settings, demo=demo))
