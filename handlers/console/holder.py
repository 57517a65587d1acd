"""The access file as it is now: re-read when it changes on disk (a `git pull` of the playbook
takes effect at the next request), its errors kept for the operations page."""

from __future__ import annotations

import logging
from pathlib import Path

from handlers.console.access import AccessList, load_access
from handlers.console.settings import console_settings
from scrm.kernel.config import Settings

log = logging.getLogger("scrm.console")


class AccessHolder:
    def __init__(self, path: Path) -> None:
        self.path = path
        # (mtime, size) of the file last read; None with the empty list = no file (nothing to read)
        self._stamp: tuple[int, int] | None = None
        self._current = AccessList()

    @classmethod
    def for_settings(cls, settings: Settings) -> AccessHolder:
        return cls(access_path(settings))

    def current(self) -> AccessList:
        try:
            st = self.path.stat()
            stamp: tuple[int, int] | None = (st.st_mtime_ns, st.st_size)
        except OSError:
            stamp = None
        if stamp != self._stamp:
            self._stamp = stamp
            self._current = load_access(self.path)
            for issue in self._current.errors:
                log.error("console access file: %s (nobody but the local admin may sign in)", issue)
        return self._current


def access_path(settings: Settings) -> Path:
    path = Path(console_settings(settings).access_file)
    return path if path.is_absolute() else settings.playbook.sop_dir / path
