"""A one-line progress display on stderr (no dependency): ``label  42% 12,345 rows 3 errors``."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    """Redraws at most every ``every_s`` seconds; ``done()`` prints the final line."""

    def __init__(self, label: str, total: int | None = None, *, stream: TextIO | None = None,
                 every_s: float = 0.2) -> None:
        self.label, self.total = label, total
        self.stream = stream or sys.stderr
        self.every_s = every_s
        self._start = self._last = time.monotonic()
        self._tty = self.stream.isatty()

    def _line(self, position: int, note: str) -> str:
        pct = f"{100 * position / self.total:5.1f}% " if self.total else ""
        rate = position / max(time.monotonic() - self._start, 1e-6)
        return f"{self.label} {pct}{note} ({rate:,.0f}/s)"

    def update(self, position: int, note: str) -> None:
        now = time.monotonic()
        if now - self._last < self.every_s:
            return
        self._last = now
        end = "\r" if self._tty else "\n"
        self.stream.write(self._line(position, note) + end)
        self.stream.flush()

    def done(self, position: int, note: str) -> None:
        self.stream.write(self._line(position, note) + "\n")
        self.stream.flush()
