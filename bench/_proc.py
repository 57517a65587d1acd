"""Process helpers of the benchmarks: a child server's log file, the machine's busy CPU, this
process's peak RSS (a server's wait for its stop and a process's CPU seconds are in
tests/support/processes.py, shared with the chaos test)."""

from __future__ import annotations

import os
import resource
import sys
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




def system_busy_s() -> float | None:
    """CPU seconds spent busy by the whole machine (all cores), from /proc/stat (Linux); None elsewhere."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
        ticks = [int(x) for x in fields]
        idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)  # idle + iowait
        return (sum(ticks[:8]) - idle) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def rss_mb() -> float:
    """This process's resident set now (to show memory staying flat along a run)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


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


def reset_peak_rss() -> bool:
    """Reset this process's VmHWM to its current RSS (Linux: ``clear_refs`` 5), so that a peak
    read afterwards is the measured phase's, not the seeding's; False where that is refused."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return False
    return True
