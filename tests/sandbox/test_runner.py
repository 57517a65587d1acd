"""`scrm serve --sandbox` end to end: the demo script's events arrive and are processed."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

from sqlalchemy import select

from scrm.db.engine import make_engine, make_sessionmaker
from scrm.db.models import ChannelWay, InboxEvent
from scrm.sandbox.runner import run_async
from tests.conftest import make_settings
from tests.fakes.service import wait_until

ROOT = Path(__file__).resolve().parents[2]


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


async def test_sandbox_mode_runs_the_demo_through_the_pipeline(sqlite_url: str) -> None:
    settings = make_settings(sqlite_url, server={"port": free_port_pair()},
                             playbook={"sop_dir": ROOT / "sop", "materials_dir": ROOT / "materials"})
    stop = asyncio.Event()
    task = asyncio.create_task(run_async(settings, demo=True, stop=stop, demo_pause_s=0.01))
    engine = make_engine(sqlite_url)
    sessions = make_sessionmaker(engine)

    async def six_done() -> bool:
        """The six scripted callbacks, and whatever internal events they caused, all processed."""
        if task.done():
            task.result()  # surface a crash
        async with sessions() as s:
            rows = (await s.execute(select(InboxEvent.source, InboxEvent.status))).all()
        return sum(src == "wecom" for src, _ in rows) == 6 and {st for _, st in rows} == {"done"}

    try:
        await wait_until(six_done, timeout_s=90)  # generous: CI machines are shared
        # The shipped channels name the demo tenant's staff: every QR code exists in the sandbox.
        async with sessions() as s:
            ways = (await s.execute(select(ChannelWay.key, ChannelWay.status, ChannelWay.qr_code))).all()
        assert {k for k, _, _ in ways} == {"payroll-onboarding", "lobby-chengxi", "wealth-salon", "cc-campaign-q4"}
        assert all(status == "active" and qr for _, status, qr in ways)
    finally:
        stop.set()
        await task
        await engine.dispose()
