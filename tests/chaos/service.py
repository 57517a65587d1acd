"""One service incarnation, run in a child process (multiprocessing, "spawn").

The real service: ``create_app(build_runtime(settings), workers=True)`` on a FIXED port (a
restarted incarnation answers at the same address), its WeCom client pointed at the sandbox
the parent runs, JSON logs at WARNING into its own file. It says ``("ready", pid)`` on its pipe
once it listens, and runs until its stop event is set, its parent is gone, or it is killed.
"""

from __future__ import annotations

import asyncio
import os
import sys
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Event as MpEvent
from pathlib import Path
from typing import Any

from tests.support.processes import until_stopped

HOST = "127.0.0.1"


@dataclass(frozen=True)
class ServiceSpec:
    """Everything one incarnation needs (picklable: it crosses the spawn)."""

    db_url: str
    workdir: str
    sandbox_url: str
    sop_dir: str
    materials_dir: str
    port: int
    log_path: str
    control_socket: str
    heartbeat_s: float = 0.5
    dead_after_s: float = 2.0


def _isolate(workdir: str) -> None:
    # The service reads ./scrm.toml and SCRM_* variables: a test must not pick those up.
    os.chdir(workdir)
    for key in [k for k in os.environ if k.startswith("SCRM_")]:
        del os.environ[key]


def _log_to(path: Path, level: str, fmt: str) -> None:
    """Log like `scrm serve` (JSON lines on stderr), but into ``path`` (appended): the handler
    binds ``sys.stderr`` when it is set up, so stderr is swapped only meanwhile."""
    from scrm.kernel.logs import setup_logging

    real_stderr = sys.stderr
    sys.stderr = open(path, "a", buffering=1)  # noqa: SIM115 (the log handler keeps it)
    try:
        setup_logging(level, fmt)
    finally:
        sys.stderr = real_stderr


def settings_for(spec: ServiceSpec) -> Any:
    from scrm.main import load_settings
    from scrm.sandbox import SANDBOX_AES_KEY, SANDBOX_AGENT_ID, SANDBOX_CORP_ID, SANDBOX_SECRET, SANDBOX_TOKEN

    return load_settings(
        None,
        database={"url": spec.db_url},
        wecom={"corp_id": SANDBOX_CORP_ID, "token": SANDBOX_TOKEN, "encoding_aes_key": SANDBOX_AES_KEY,
               "secret": SANDBOX_SECRET, "agent_id": SANDBOX_AGENT_ID, "api_base": spec.sandbox_url},
        playbook={"sop_dir": spec.sop_dir, "materials_dir": spec.materials_dir},
        server={"host": HOST, "port": spec.port, "public_url": f"http://{HOST}:{spec.port}",
                "control_socket": spec.control_socket},
        liveness={"heartbeat_s": spec.heartbeat_s, "dead_after_s": spec.dead_after_s},
        log={"level": "WARNING", "format": "json"},
    )


def _capture_output(path: Path) -> None:
    """This process's stdout and stderr (a crash's traceback, C-level messages) into ``path``."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)


def service_main(spec: ServiceSpec, conn: Connection, stop: MpEvent) -> None:
    _capture_output(Path(spec.log_path).with_suffix(".out"))
    _isolate(spec.workdir)
    settings = settings_for(spec)
    _log_to(Path(spec.log_path), settings.log.level, settings.log.format)
    asyncio.run(_serve(settings, spec.port, conn, stop))


async def _serve(settings: Any, port: int, conn: Connection, stop: MpEvent) -> None:
    from aiohttp import web

    from scrm.kernel.http import create_app
    from scrm.main import build_runtime

    runtime = build_runtime(settings)
    runner = web.AppRunner(create_app(runtime, workers=True), handle_signals=False)
    await runner.setup()  # starts the runtime: joins the registry, releases the dead's claims
    site = web.TCPSite(runner, HOST, port)
    await site.start()
    conn.send(("ready", os.getpid()))
    try:
        await until_stopped(stop)
    finally:
        await runner.cleanup()

