"""The watched CRM drop folder: CSV/JSONL files put in ``[crm] inbox_dir`` are imported.

Layout under ``inbox_dir``::

    customers.csv, events.jsonl   drops (.csv, .jsonl, .ndjson; dotfiles, *.tmp, *.part ignored)
    processing/                   claimed files, each with a ``.lease`` beside it
    done/                         imported, no bad row; ``<file>.report.txt`` beside it
    failed/                       a bad row (good rows are kept), an unreadable file, or an
                                  import that failed ``max_attempts`` times; report beside it

Only complete files are taken: a drop must show the same size and mtime on two polls in a row
(or be written under a dotfile/``.tmp`` name and renamed when complete). A file is claimed by
an atomic rename into ``processing/`` under a unique name, so with several instances watching
one (shared) folder exactly one takes it. The claim carries a lease, renewed after every
chunk; a claim whose lease ran out (its instance crashed or stopped) is taken over by the next
poll of any instance and imported again from the start. That is safe because importing is an
upsert (:func:`handlers.crm.importer.import_file`): rows already stored change nothing and queue
nothing, key events dedup by ``event_id``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Literal

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.crm.importer import SUFFIXES, FileFormatError, ImportReport, import_file
from handlers.crm.store import TierRule
from scrm.kernel.clock import Clock
from scrm.kernel.inbox import Inbox
from scrm.kernel.leases import new_owner_id

log = logging.getLogger("handlers.crm.dropfolder")

PROCESSING, DONE, FAILED = "processing", "done", "failed"
LEASE_SUFFIX, REPORT_SUFFIX, PARTIAL_SUFFIX = ".lease", ".report.txt", ".report.part"


class ClaimLost(Exception):
    """Another instance took the file over (our lease had run out): stop, it finishes the job."""


@dataclass(frozen=True)
class Lease:
    owner: str
    until: datetime
    attempts: int
    name: str  # the file's name as dropped (claimed files carry a stamp and a token)


@dataclass
class DropResult:
    """What happened to one file: where it went, and the import's counts."""

    name: str
    outcome: Literal["done", "failed", "retry", "lost"]
    path: Path
    report: ImportReport | None = None
    error: str | None = None


def is_drop(name: str) -> bool:
    """A file the folder imports: a known suffix and no temporary/hidden name."""
    return not name.startswith(".") and Path(name).suffix.lower() in SUFFIXES


def original_name(claimed: str) -> str:
    """``20261102T010000Z-1a2b3c4d-customers.csv`` → ``customers.csv``."""
    parts = claimed.split("-", 2)
    return parts[2] if len(parts) == 3 else claimed


class DropFolder:
    """Polls one folder; :meth:`poll` does one pass (tests call it with a fake clock)."""

    def __init__(self, root: Path, sessions: async_sessionmaker[AsyncSession], inbox: Inbox, clock: Clock, *,
                 poll_s: float = 30.0, lease_s: float = 300.0, max_attempts: int = 3, chunk: int = 500,
                 owner: str | None = None, tiers: TierRule | None = None) -> None:
        self.root = root
        self.tiers = tiers
        self.sessions = sessions
        self.inbox = inbox
        self.clock = clock
        self.poll_s = poll_s
        self.lease_s = lease_s
        self.max_attempts = max_attempts
        self.chunk = chunk
        self.owner = owner or new_owner_id("dropfolder")
        self._seen: dict[str, tuple[int, int]] = {}
        self._ignored: set[str] = set()

    @property
    def processing(self) -> Path:
        return self.root / PROCESSING

    # ------------------------------------------------------------------ the loop
    async def run(self) -> None:
        log.info("watching the CRM drop folder", extra={"dir": str(self.root), "poll_s": self.poll_s})
        while True:
            try:
                await self.poll()
            except Exception:
                log.exception("CRM drop folder poll failed; trying again next poll")
            await asyncio.sleep(self.poll_s)

    async def poll(self) -> list[DropResult]:
        """Take over expired claims, claim the drops that stopped changing, import each."""
        await asyncio.to_thread(self._make_dirs)
        results = []
        now = self.clock.now()
        for path, lease in await asyncio.to_thread(self._expired_claims, now):
            claimed = await asyncio.to_thread(self._take_over, path, lease)
            if claimed is not None:
                results.append(await self._import(*claimed))
        for name in await asyncio.to_thread(self._stable_drops):
            claimed = await asyncio.to_thread(self._claim, name)
            if claimed is not None:
                results.append(await self._import(*claimed))
        return results

    # ------------------------------------------------------------------ finding and claiming (threads)
    def _make_dirs(self) -> None:
        for sub in (PROCESSING, DONE, FAILED):
            (self.root / sub).mkdir(parents=True, exist_ok=True)

    def _stable_drops(self) -> list[str]:
        """Drops whose (size, mtime) did not change since the last poll; remembers the rest."""
        current: dict[str, tuple[int, int]] = {}
        with os.scandir(self.root) as entries:
            for entry in entries:
                if not entry.is_file(follow_symlinks=False):
                    continue
                if not is_drop(entry.name):
                    if not entry.name.startswith(".") and entry.name not in self._ignored:
                        self._ignored.add(entry.name)
                        log.warning("CRM drop folder: ignoring a file that is not .csv/.jsonl",
                                    extra={"file": entry.name})
                    continue
                try:
                    st = entry.stat(follow_symlinks=False)
                except FileNotFoundError:  # another instance claimed it between the scan and now
                    continue
                current[entry.name] = (st.st_size, st.st_mtime_ns)
        stable = sorted(n for n, sig in current.items() if self._seen.get(n) == sig)
        self._seen = {n: sig for n, sig in current.items() if n not in stable}
        return stable

    def _claimed_path(self, name: str) -> Path:
        stamp = self.clock.now().strftime("%Y%m%dT%H%M%SZ")
        return self.processing / f"{stamp}-{secrets.token_hex(4)}-{name}"

    def _claim(self, name: str) -> tuple[Path, Lease] | None:
        """Rename the drop into processing/; None when another instance renamed it first."""
        target = self._claimed_path(name)
        lease = Lease(self.owner, self._until(), 1, name)
        # Lease first: a claimed file is never seen without one (it would look abandoned).
        self._write_lease(target, lease)
        try:
            os.rename(self.root / name, target)
        except FileNotFoundError:
            _unlink(_lease_path(target))
            return None
        return target, lease

    def _expired_claims(self, now: datetime) -> list[tuple[Path, Lease | None]]:
        found = []
        with os.scandir(self.processing) as entries:
            names = [e.name for e in entries if e.is_file(follow_symlinks=False)]
        for name in names:
            path = self.processing / name
            if name.endswith(LEASE_SUFFIX):
                data = path.with_name(name.removesuffix(LEASE_SUFFIX))
                lease = _read_lease(path)
                if not data.exists() and (lease is None or lease.until <= now):
                    _unlink(path)  # the file was finished (or taken over) before its lease went
                continue
            if not is_drop(name):
                continue
            lease = _read_lease(_lease_path(path))
            if lease is None or lease.until <= now:
                found.append((path, lease))
        return found

    def _take_over(self, path: Path, lease: Lease | None) -> tuple[Path, Lease] | None:
        """Claim an abandoned file again (a new name: a slow old owner notices it lost it)."""
        name = lease.name if lease is not None else original_name(path.name)
        attempts = (lease.attempts if lease is not None else 0) + 1
        target = self._claimed_path(name)
        new = Lease(self.owner, self._until(), attempts, name)
        self._write_lease(target, new)
        try:
            os.rename(path, target)
        except FileNotFoundError:
            _unlink(_lease_path(target))
            return None
        _unlink(_lease_path(path))
        _unlink(path.with_name(path.name + PARTIAL_SUFFIX))
        log.warning("CRM drop folder: taking over an abandoned import",
                    extra={"file": name, "attempt": attempts, "previous_owner": lease.owner if lease else None})
        return target, new

    # ------------------------------------------------------------------ leases
    def _until(self) -> datetime:
        return self.clock.now() + timedelta(seconds=self.lease_s)

    def _write_lease(self, claimed: Path, lease: Lease) -> None:
        data = {"owner": lease.owner, "until": lease.until.isoformat(), "attempts": lease.attempts,
                "name": lease.name}
        final = _lease_path(claimed)
        tmp = final.with_name(f".{final.name}.{self.owner}.tmp")
        tmp.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
        os.replace(tmp, final)  # readers see the old lease or the new one, never half of one

    def _renew(self, claimed: Path, lease: Lease) -> None:
        current = _read_lease(_lease_path(claimed))
        if not claimed.exists() or current is None or current.owner != self.owner:
            raise ClaimLost(lease.name)
        self._write_lease(claimed, Lease(self.owner, self._until(), lease.attempts, lease.name))

    # ------------------------------------------------------------------ importing
    async def _import(self, claimed: Path, lease: Lease) -> DropResult:
        if lease.attempts > self.max_attempts:
            error = f"{lease.name}: gave up after {lease.attempts - 1} attempts that did not finish"
            return await asyncio.to_thread(self._finish, claimed, lease, FAILED, None, error)
        partial = claimed.with_name(claimed.name + PARTIAL_SUFFIX)
        try:
            with _open_report(partial) as out:
                report = await import_file(
                    claimed, self.sessions, self.inbox, self.clock, chunk=self.chunk, name=lease.name, tiers=self.tiers,
                    on_error=lambda line: _write_line(out, line),
                    on_chunk=lambda: asyncio.to_thread(self._renew, claimed, lease))
                out.write(report.summary() + "\n")
        except ClaimLost:
            log.warning("CRM drop folder: another instance took this file over", extra={"file": lease.name})
            return DropResult(lease.name, "lost", claimed)
        except FileFormatError as exc:
            return await asyncio.to_thread(self._finish, claimed, lease, FAILED, None, str(exc))
        except asyncio.CancelledError:
            # Stopping: let the next poll (of any instance) start over now, not after the lease.
            with contextlib.suppress(OSError):
                self._write_lease(claimed, Lease(self.owner, self.clock.now(), lease.attempts, lease.name))
            raise
        except Exception as exc:
            log.exception("CRM drop folder: import failed", extra={"file": lease.name, "attempt": lease.attempts})
            error = f"{lease.name}: import failed (attempt {lease.attempts}): {type(exc).__name__}: {exc}"
            if lease.attempts >= self.max_attempts:
                return await asyncio.to_thread(self._finish, claimed, lease, FAILED, None, error)
            # Retry at the next poll (any instance): the lease ends now.
            await asyncio.to_thread(self._write_lease, claimed,
                                    Lease(self.owner, self.clock.now(), lease.attempts, lease.name))
            return DropResult(lease.name, "retry", claimed, error=error)
        dest = DONE if report.error_count == 0 else FAILED
        result = await asyncio.to_thread(self._finish, claimed, lease, dest, report, None)
        log.info("CRM drop folder: file imported", extra={
            "file": lease.name, "to": dest, "rows": report.rows, "stored": report.stored,
            "errors": report.error_count})
        return result

    def _finish(self, claimed: Path, lease: Lease, dest: str, report: ImportReport | None,
                error: str | None) -> DropResult:
        """Report first, then the file, then the lease: a crash in between only repeats work."""
        folder = self.root / dest
        partial = claimed.with_name(claimed.name + PARTIAL_SUFFIX)
        try:
            if error is not None:
                partial.write_text(error + "\n", encoding="utf-8")
            os.replace(partial, folder / (claimed.name + REPORT_SUFFIX))
            os.rename(claimed, folder / claimed.name)
        except FileNotFoundError:
            return DropResult(lease.name, "lost", claimed, report, error)
        _unlink(_lease_path(claimed))
        if error is not None:
            log.error("CRM drop folder: file failed", extra={"file": lease.name, "error": error})
        return DropResult(lease.name, "done" if dest == DONE else "failed", folder / claimed.name, report, error)


def _write_line(out: IO[str], line: str) -> None:
    out.write(line + "\n")


def _lease_path(claimed: Path) -> Path:
    return claimed.with_name(claimed.name + LEASE_SUFFIX)


def _read_lease(path: Path) -> Lease | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return Lease(str(data["owner"]), datetime.fromisoformat(data["until"]), int(data["attempts"]),
                     str(data["name"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None  # missing or unreadable: the claim counts as abandoned


def _unlink(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


@contextlib.contextmanager
def _open_report(path: Path) -> Iterator[IO[str]]:
    # Error lines stream to disk as they are found (a file of bad rows never fills memory).
    with path.open("w", encoding="utf-8") as out:
        yield out
