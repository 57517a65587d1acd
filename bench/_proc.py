"""Process helpers the benchmarks share: a child server's log file, its wait for its stop, CPU seconds."""

from __future__ import annotations

import asyncio
import os
import resource
import sys
from multiprocessing.synchronize import Event as MpEvent
from pathlib import Path


def log_service_to(path: Path, level: str, fmt: str) -> None:
    """Log like `scrm serve` (JSON lines on stderr), but into ``path``: the handler binds
    ``sys.stderr`` when it is set up, so stderr is swapped only meanwhile and crashes still
    reach the terminal."""
    from scrm.kernel.logs import setup_logging

    real_stderr = sys.stderr
    sys.stderr = open(path, "w", buffering=1 << 16)  # noqa: SIM115 (the log handler keeps it)
    try:
        setup_logging(level, fmt)
    finally:
        sys.stderr = real_stderr


async def until_stopped(stop: MpEvent) -> None:
    """Wait for ``stop`` in a thread (the loop stays free for requests); also end when the
    parent process is gone, so a crashed bench leaves no server behind."""
    parent = os.getppid()
    loop = asyncio.get_running_loop()
    while not await loop.run_in_executor(None, stop.wait, 0.5) and os.getppid() == parent:
        pass


def proc_cpu_s(pid: int | None) -> float | None:
    """utime + stime of a process, from /proc (Linux); None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def system_busy_s() -> float | None:
    """CPU seconds spent busy by the whole machine (all cores), from /proc/stat (Linux); None elsewhere."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
        ticks = [int(x) for x in fields]
        idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)  # idle + iowait
        return (sum(ticks[:8]) - idle) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def peak_rss_mb() -> float:
    """This process's peak RSS. VmHWM, not ru_maxrss: Linux carries ru_maxrss across exec, so a
    spawned child's would start at its parent's RSS at the time of the spawn (and VmHWM can be
    reset, see ``bench.sop_plan``)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
