"""Network latency for the sandbox: each answer waits ``latency_s`` ± ``jitter_s`` real seconds.

WeCom is a remote service: every call costs a round trip and WeCom's own processing, some
100-300 ms from a bank's data centre. A sandbox that answers in a millisecond hides what a
slow WeCom does to a burst (workers waiting on replies, windows running out), so the sandbox
can delay its answers. The delay is drawn per answer, uniformly from
``[latency_s - jitter_s, latency_s + jitter_s]`` and never below 0, by a seeded
``random.Random`` (the same seed gives the same delays in the same order). It is a real
``asyncio.sleep``, as the ``slow`` fault's is: it stands for the network, so it takes real time,
and the sandbox's logical clock does not move.
"""

from __future__ import annotations

import asyncio
import math
import random


class Latency:
    """The delay of one sandbox server's answers; ``Latency()`` (the default) adds none."""

    def __init__(self, latency_s: float = 0.0, jitter_s: float = 0.0, seed: int = 0) -> None:
        for name, value in (("latency_s", latency_s), ("jitter_s", jitter_s)):
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, not {value!r}")
        self.latency_s = float(latency_s)
        self.jitter_s = float(jitter_s)
        self.rng = random.Random(seed)
        #: Answers delayed so far, and the seconds they waited in all (for tests and benches).
        self.delayed = 0
        self.total_s = 0.0

    @property
    def enabled(self) -> bool:
        return self.latency_s > 0 or self.jitter_s > 0

    def draw(self) -> float:
        """The next delay in seconds (0 when disabled; no random number is drawn then)."""
        if not self.enabled:
            return 0.0
        if self.jitter_s == 0:
            return self.latency_s
        return max(0.0, self.latency_s + self.rng.uniform(-self.jitter_s, self.jitter_s))

    async def wait(self) -> float:
        """Sleep for the next delay, if any; returns it."""
        delay = self.draw()
        if delay > 0:
            self.delayed += 1
            self.total_s += delay
            await asyncio.sleep(delay)
        return delay

    def __repr__(self) -> str:
        return f"Latency(latency_s={self.latency_s:g}, jitter_s={self.jitter_s:g})"
