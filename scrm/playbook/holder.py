"""The running service's playbook: loaded at start-up, reloaded on demand, last good one kept.

A bad playbook at start-up refuses to start (the error lists every ``file:line: key: message``);
a bad playbook on reload is refused and the previous one keeps running. Every load is checked
against the injected clock's date, never the machine's: an expired material is a warning (its
steps are skipped), so a restart on the day it expires starts as any other day.

Each loaded playbook has a **version**: a short hash of the YAML it was read from, the same on
every instance that runs the same files, shown by ``scrm sop reload`` and ``/metrics``.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo

from scrm.kernel.clock import Clock
from scrm.kernel.config import PlaybookSettings
from scrm.kernel.reloadable import Gauge, ReloadOutcome
from scrm.playbook import MaterialFinding, Playbook, PlaybookError, load_playbook, material_findings

log = logging.getLogger("scrm.playbook")


class PlaybookLoadError(Exception):
    """The playbook does not validate; ``str()`` lists every problem, one per line."""


def _files(dirs: list[Path]) -> list[Path]:
    return [p for d in dirs if d.is_dir() for p in sorted(d.rglob("*.y*ml"))]


def _snapshot(dirs: list[Path]) -> tuple[tuple[str, float], ...]:
    return tuple((str(p), p.stat().st_mtime) for p in _files(dirs))


def playbook_version(dirs: list[Path]) -> str:
    """A short hash of every playbook file's path and bytes: equal files, equal version."""
    digest = hashlib.sha256()
    for d in dirs:
        for p in _files([d]):
            digest.update(p.relative_to(d).as_posix().encode() + b"\0" + p.read_bytes() + b"\0")
    return digest.hexdigest()[:12]


class PlaybookHolder:
    def __init__(self, settings: PlaybookSettings, clock: Clock) -> None:
        self.settings = settings
        self.clock = clock
        self.current: Playbook | None = None
        self.version = ""
        # The last reload was refused: the running version is older than the files on disk.
        self.reload_failed = False
        self.last_errors: tuple[str, ...] = ()
        self._seen: tuple[tuple[str, float], ...] = ()

    @property
    def dirs(self) -> list[Path]:
        return [self.settings.sop_dir, self.settings.materials_dir]

    def today(self) -> date:
        """The clock's date in the running playbook's time zone (the service's, before one loads)."""
        tz = self.current.policy.timezone if self.current is not None else self.settings.timezone
        return self.clock.now().astimezone(ZoneInfo(tz)).date()

    def _load(self) -> tuple[Playbook, str]:
        version = playbook_version(self.dirs)
        try:
            # A banned claim or an edited approved text withholds that material, never the playbook.
            return load_playbook(self.settings.sop_dir, self.settings.materials_dir, today=self.clock.now(),
                                 withhold_content=True), version
        except PlaybookError as exc:
            raise PlaybookLoadError("\n".join(str(i) for i in exc.errors)) from None

    def load(self) -> Playbook:
        """Initial load; raises PlaybookLoadError so the service refuses to start."""
        self._seen = _snapshot(self.dirs)
        self.current, self.version = self._load()
        for warning in self.current.warnings:
            log.warning("playbook: %s", warning)
        self._log_findings()
        return self.current

    def reload(self) -> ReloadOutcome:
        """Reload; on errors keep the last good playbook and say why."""
        self._seen = _snapshot(self.dirs)
        try:
            self.current, self.version = self._load()
        except PlaybookLoadError as exc:
            self.reload_failed = True
            self.last_errors = tuple(str(exc).splitlines())
            log.error("playbook reload refused; keeping the last good version",
                      extra={"errors": list(self.last_errors), "version": self.version})
            return ReloadOutcome(False, self.version, self.last_errors)
        self.reload_failed, self.last_errors = False, ()
        log.info("playbook reloaded", extra={"version": self.version})
        self._log_findings()
        return ReloadOutcome(True, self.version, warnings=tuple(str(w) for w in self.current.warnings))

    def findings(self) -> list[MaterialFinding]:
        """Materials in use that are unsendable today, or will be within 30 days."""
        if self.current is None:
            return []
        return material_findings(self.current, self.today())

    def gauges(self) -> list[Gauge]:
        findings = self.findings()
        return [("scrm_playbook_materials_in_use",
                 "Materials that active steps use and that may not be sent today (blocked: their steps are "
                 "skipped) or expire within 30 days (expiring).",
                 [({"state": "blocked"}, float(sum(f.blocked for f in findings))),
                  ({"state": "expiring"}, float(sum(not f.blocked for f in findings)))])]

    def _log_findings(self) -> None:
        blocked = [f for f in self.findings() if f.blocked]
        if blocked:
            log.warning("%d material(s) in use may not be sent today; the steps using them are skipped: %s",
                        len(blocked), ", ".join(f.material for f in blocked))

    def changed_on_disk(self) -> bool:
        return _snapshot(self.dirs) != self._seen
