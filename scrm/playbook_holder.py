"""The running service's playbook: loaded at start-up, reloaded on demand, last good one kept.

A bad playbook at start-up refuses to start (the error lists every ``file:line: key: message``);
a bad playbook on reload is refused and the previous one keeps running.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from scrm.config import PlaybookSettings

log = logging.getLogger("scrm.playbook")


class PlaybookLoadError(Exception):
    """The playbook does not validate; ``str()`` lists every problem, one per line."""


def _snapshot(dirs: list[Path]) -> tuple[tuple[str, float], ...]:
    files: list[tuple[str, float]] = []
    for d in dirs:
        if d.is_dir():
            files.extend((str(p), p.stat().st_mtime) for p in sorted(d.rglob("*.y*ml")))
    return tuple(files)


class PlaybookHolder:
    def __init__(self, settings: PlaybookSettings) -> None:
        self.settings = settings
        self.current: Any = None
        self._seen: tuple[tuple[str, float], ...] = ()

    @property
    def dirs(self) -> list[Path]:
        return [self.settings.sop_dir, self.settings.materials_dir]

    def _load(self) -> Any:
        from scrm.sop import PlaybookError, load_playbook

        try:
            return load_playbook(self.settings.sop_dir, self.settings.materials_dir)
        except PlaybookError as exc:
            raise PlaybookLoadError("\n".join(str(i) for i in exc.errors)) from None

    def load(self) -> Any:
        """Initial load; raises PlaybookLoadError so the service refuses to start."""
        self._seen = _snapshot(self.dirs)
        self.current = self._load()
        for warning in getattr(self.current, "warnings", []):
            log.warning("playbook: %s", warning)
        return self.current

    def reload(self) -> list[str]:
        """Reload; on errors keep the last good playbook and return the errors."""
        self._seen = _snapshot(self.dirs)
        try:
            self.current = self._load()
        except PlaybookLoadError as exc:
            errors = str(exc).splitlines()
            log.error("playbook reload refused; keeping the last good version", extra={"errors": errors})
            return errors
        log.info("playbook reloaded")
        return []

    def changed_on_disk(self) -> bool:
        return _snapshot(self.dirs) != self._seen
