"""A feature's own rule file in ``sop/`` (``membership.yaml``, ``referral.yaml`` …): every problem
collected as ``file:line: key: message`` instead of stopping at the first, and the parsed rules
kept until the file changes (handlers read them per event).

The features' readers subclass :class:`RuleReader` for their own keys; :func:`reloading` gives
each its cached ``load_current``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any, TypeVar

from .issues import PlaybookError, PlaybookIssue
from .yamlsrc import SourceFile

# The largest amount (points, growth, a cap …) a rule may name: more is a typo, not a rule.
MAX_AMOUNT = 1_000_000

T = TypeVar("T")


class RuleReader:
    """Walks a parsed rule file; ``problems`` holds every mistake found, each at its line."""

    def __init__(self, src: SourceFile) -> None:
        self.src = src
        self.problems: list[PlaybookIssue] = []

    def bad(self, at: tuple[Any, ...], message: str) -> None:
        self.problems.append(self.src.issue(at, message))

    def mapping(self, value: Any, at: tuple[Any, ...], keys: tuple[str, ...], *, required: tuple[str, ...] = ()
                ) -> dict[str, Any]:
        """``value`` as a mapping of the known ``keys`` (an unknown or missing key is a problem)."""
        if not isinstance(value, dict):
            self.bad(at, f"must be a mapping ({', '.join(keys)})")
            return {}
        for k in value:
            if k not in keys:
                self.bad((*at, k), f"unknown key; expected one of {', '.join(keys)}")
        for k in required:
            if k not in value:
                self.bad(at, f"needs {k}:")
        return value

    def whole(self, value: Any, at: tuple[Any, ...], *, low: int = 0, high: int = MAX_AMOUNT) -> int:
        """``value`` as a whole number in ``low..high`` (``low`` when it is not one)."""
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            self.bad(at, f"must be a whole number {low}..{high}, got {value!r}")
            return low
        return value


def problems(load: Callable[[], object]) -> list[PlaybookIssue]:
    """Every problem ``load`` raises (none when it loads)."""
    try:
        load()
    except PlaybookError as exc:
        return list(exc.errors)
    return []


def reloading(load: Callable[[Path, Collection[str]], T], file_name: str) -> Callable[[Path, Collection[str]], T]:
    """``load(sop_dir, crm_kinds)``, read again only when ``sop_dir/file_name`` changed (its
    modification time or size) or the CRM's event kinds did."""

    @functools.lru_cache(maxsize=8)
    def cached(sop_dir: str, stamp: tuple[int, int] | None, crm_kinds: tuple[str, ...]) -> T:
        return load(Path(sop_dir), crm_kinds)

    def current(sop_dir: Path, crm_kinds: Collection[str]) -> T:
        try:
            st = (sop_dir / file_name).stat()
            stamp: tuple[int, int] | None = (st.st_mtime_ns, st.st_size)
        except FileNotFoundError:
            stamp = None
        return cached(str(sop_dir), stamp, tuple(sorted(crm_kinds)))

    return current
