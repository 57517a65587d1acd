"""Child-process helpers the chaos test and the benchmarks share: a server's wait for its stop,
and a process's CPU seconds."""

from __future__ import annotations

import asyncio
import os
from multiprocessing.synchronize import Event as MpEvent
from pathlib import Path


async def until_stopped(stop: MpEvent) -> None:
    """Wait for ``stop`` in a thread (the loop stays free for requests); also end when the
    parent process is gone, so a crashed test or bench leaves no server behind."""
    parent = os.getppid()
    loop = asyncio.get_running_loop()
    while not await loop.run_in_executor(None, stop.wait, 0.5) and os.getppid() == parent:
        pass


def proc_cpu_s(pid: int | None) -> float | None:
    """utime + stime of a process, from /proc (Linux); None elsewhere or when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None
