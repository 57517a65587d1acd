"""Fault injection per API path, so clients can be tested against WeCom's failure modes.

Kinds:

- ``error``: reply with an errcode and do nothing (-1 system busy, 45009 freq limit, 45033
  concurrency limit, or any code, e.g. 40014 to exercise token refresh);
- ``slow``: wait ``delay_s`` real seconds before handling (server-side, so a real sleep);
- ``drop``: handle the call — the effect lands in the state — then close the connection
  without a reply; the client sees ``ServerDisconnectedError`` and cannot know it worked.

A fault fires on the next ``count`` matching calls (deterministic), or on each call with
probability ``rate`` drawn from a seeded ``random.Random`` (reproducible), or both (at most
``count`` times). Path ``"*"`` matches every API.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Literal

from scrm.sandbox import errors

FaultKind = Literal["error", "slow", "drop"]


def normalize_path(path: str) -> str:
    """Accept ``message/send`` or ``/cgi-bin/message/send``; keep ``*`` and other full paths."""
    if path == "*" or path.startswith("/"):
        return path
    return f"/cgi-bin/{path}"


@dataclass
class Fault:
    """One armed fault; ``remaining`` None means unlimited (only with ``rate``)."""

    path: str
    kind: FaultKind
    errcode: int = 0
    delay_s: float = 0.0
    remaining: int | None = 1
    rate: float | None = None
    fired: int = 0

    @property
    def exhausted(self) -> bool:
        return self.remaining is not None and self.remaining <= 0


@dataclass(frozen=True)
class FiredFault:
    """A record of a fault that fired (for assertions)."""

    path: str
    kind: FaultKind
    errcode: int


class FaultInjector:
    """The set of armed faults of one sandbox server."""

    def __init__(self, seed: int = 0) -> None:
        self.rng = random.Random(seed)
        self.faults: list[Fault] = []
        self.fired: list[FiredFault] = []

    def add(
        self,
        path: str,
        kind: FaultKind,
        *,
        errcode: int = 0,
        delay_s: float = 0.0,
        count: int | None = None,
        rate: float | None = None,
    ) -> Fault:
        """Arm a fault. Without ``count`` and ``rate`` it fires once."""
        if rate is not None and not 0.0 <= rate <= 1.0:
            raise ValueError("rate must be within [0, 1]")
        if count is not None and count < 1:
            raise ValueError("count must be >= 1")
        remaining = count if count is not None else (None if rate is not None else 1)
        fault = Fault(
            path=normalize_path(path), kind=kind, errcode=errcode, delay_s=delay_s, remaining=remaining, rate=rate
        )
        self.faults.append(fault)
        return fault

    def error(self, path: str, errcode: int, *, count: int | None = None, rate: float | None = None) -> Fault:
        """Reply ``errcode`` without any effect."""
        return self.add(path, "error", errcode=errcode, count=count, rate=rate)

    def system_busy(self, path: str, *, count: int | None = None, rate: float | None = None) -> Fault:
        """errcode -1 (系统繁忙)."""
        return self.error(path, errors.SYSTEM_BUSY, count=count, rate=rate)

    def freq_limit(self, path: str, *, count: int | None = None, rate: float | None = None) -> Fault:
        """errcode 45009 (接口调用超过限制)."""
        return self.error(path, errors.FREQ_LIMIT, count=count, rate=rate)

    def concurrency_limit(self, path: str, *, count: int | None = None, rate: float | None = None) -> Fault:
        """errcode 45033 (接口并发调用超过限制)."""
        return self.error(path, errors.CONCURRENCY_LIMIT, count=count, rate=rate)

    def slow(self, path: str, delay_s: float, *, count: int | None = None, rate: float | None = None) -> Fault:
        """Delay the reply (the call still takes effect, after the delay)."""
        return self.add(path, "slow", delay_s=delay_s, count=count, rate=rate)

    def drop_reply(self, path: str, *, count: int | None = None, rate: float | None = None) -> Fault:
        """Apply the call, then close the connection without replying."""
        return self.add(path, "drop", count=count, rate=rate)

    def clear(self, path: str | None = None) -> None:
        """Disarm every fault, or those armed for ``path``."""
        if path is None:
            self.faults.clear()
        else:
            wanted = normalize_path(path)
            self.faults = [f for f in self.faults if f.path != wanted]

    def pick(self, path: str) -> Fault | None:
        """The fault to apply to this call, if any (consumes one firing)."""
        for fault in self.faults:
            if fault.path not in (path, "*") or fault.exhausted:
                continue
            if fault.rate is not None and self.rng.random() >= fault.rate:
                continue
            fault.fired += 1
            if fault.remaining is not None:
                fault.remaining -= 1
            self.fired.append(FiredFault(path=path, kind=fault.kind, errcode=fault.errcode))
            self.faults = [f for f in self.faults if not f.exhausted]
            return fault
        return None
