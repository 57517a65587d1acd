"""The archive intake worker: pull, decrypt, review and store archived messages, a batch at a time.

One batch is one transaction: the cursor's move (a compare-and-set from the seq it was read at),
the messages, their review cases and the officers' alerts commit together or not at all. So a
process killed anywhere (kill -9 included) resumes from the last committed seq: a message is
never lost, stored twice or reviewed twice, and two instances never take the same batch (the
second's compare-and-set finds the cursor moved and stores nothing).

Everything that can refuse a batch — the review rules, a missing key version, a key that does not
decrypt, a malformed message — refuses it before anything is written: the cursor stays, the
error is logged as one line, and the next poll tries again (after the operator fixes it).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidTag
from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.compliance.archive.cases import open_cases
from handlers.compliance.archive.keys import ArchiveKeyError, PrivateKeys, wrong_key
from handlers.compliance.archive.messages import row_of
from handlers.compliance.archive.rules import REVIEW_FILE, ReviewRules, ReviewRulesError, load_review_rules
from handlers.compliance.archive.source import ArchiveSource, ArchiveSourceError, EncryptedChat
from handlers.compliance.models import ArchiveCursor, ArchiveMessage
from handlers.compliance.settings import compliance_settings
from scrm.adapters.db.engine import dialect_of, insert_ignore, table_of
from scrm.kernel.clock import Clock
from scrm.kernel.config import Settings
from scrm.kernel.outbox import Outbox
from scrm.playbook import Playbook

if TYPE_CHECKING:
    from scrm.kernel.service import Runtime

log = logging.getLogger("scrm.compliance.archive")
CURSOR_ID = 1
# What stops a batch with a reason an operator can act on (logged as one line, no traceback).
REFUSALS = (ArchiveKeyError, ArchiveSourceError, ReviewRulesError)


@dataclass
class ArchiveIntake:
    source: ArchiveSource
    keys: PrivateKeys
    sessions: async_sessionmaker[AsyncSession]
    clock: Clock
    outbox: Outbox
    settings: Settings
    rules: Callable[[], ReviewRules]
    playbook: Callable[[], Playbook | None]
    batch: int = 1000
    poll_s: float = 60.0
    # Called with each message's seq after it is stored and reviewed, before the commit (tests
    # crash the intake mid-batch here).
    on_message: Callable[[int], None] | None = None

    async def cursor(self) -> int:
        """The last seq stored (the cursor's row is made on first use)."""
        async with self.sessions() as db, db.begin():
            seq = await db.scalar(select(ArchiveCursor.seq).where(ArchiveCursor.id == CURSOR_ID))
            if seq is None:
                await db.execute(insert_ignore(dialect_of(db), table_of(ArchiveCursor), ["id"]),
                                 {"id": CURSOR_ID, "seq": 0, "updated_at": self.clock.now()})
                seq = 0
        return int(seq)

    async def pull(self) -> int:
        """One batch: returns how many messages it stored (0: the archive is drained, or another
        instance took the batch). Raises one of :data:`REFUSALS` with nothing written."""
        rules = self.rules()
        start = await self.cursor()
        chats = await self.source.fetch(start, self.batch)
        if not chats:
            return 0
        now = self.clock.now()
        rows = await asyncio.to_thread(self._decrypt_all, chats, start, now)
        async with self.sessions() as db, db.begin():
            moved = await db.execute(update(ArchiveCursor)
                                     .where(ArchiveCursor.id == CURSOR_ID, ArchiveCursor.seq == start)
                                     .values(seq=rows[-1]["seq"], updated_at=now))
            if moved.rowcount != 1:  # type: ignore[attr-defined]
                log.info("archive batch after seq %d was taken by another instance", start)
                await db.rollback()
                return 0
            await db.execute(insert(ArchiveMessage), rows)
            if self.on_message is not None:
                for row in rows:
                    self.on_message(row["seq"])
            cases = await open_cases(db, rows, rules, now=now, outbox=self.outbox, settings=self.settings,
                                     playbook=self.playbook())
        if cases:
            self.outbox.wake()
        log.info("archive: stored messages %d–%d, %d new case(s)", rows[0]["seq"], rows[-1]["seq"], len(cases))
        return len(rows)

    def _decrypt_all(self, chats: list[EncryptedChat], start: int, now: Any) -> list[dict[str, Any]]:
        rows, last = [], start
        for chat in chats:
            if chat.seq <= last:
                raise ArchiveSourceError(f"archive returned seq {chat.seq} after seq {last}: out of order")
            last = chat.seq
            try:
                message = self.source.open(self.keys.random_key(chat), chat.encrypt_chat_msg)
            except (InvalidTag, ValueError):
                raise wrong_key(chat) from None
            rows.append(row_of(message, seq=chat.seq, key_version=chat.publickey_ver, stored_at=now))
        return rows

    async def run(self) -> None:
        """The worker: pull while there is more, then wait ``poll_s``; a refused batch waits too."""
        while True:
            try:
                stored = await self.pull()
            except REFUSALS as exc:
                log.error("archive intake waits: %s", exc)
                stored = 0
            except Exception:
                log.exception("archive intake failed; trying again next poll")
                stored = 0
            if stored < self.batch:
                await asyncio.sleep(self.poll_s)


def rules_loader(sop_dir: Path) -> Callable[[], ReviewRules]:
    path = sop_dir / REVIEW_FILE
    return lambda: load_review_rules(path, str(path))


def intake_for(runtime: Runtime) -> ArchiveIntake:
    """The intake the configuration asks for (raises :class:`ArchiveSourceError` or
    :class:`ArchiveKeyError` with one line when it cannot be built)."""
    cfg = compliance_settings(runtime.settings)
    source: ArchiveSource
    if cfg.archive_source == "sdk":
        from handlers.compliance.archive.source import load_sdk_source

        source = load_sdk_source(cfg.archive_sdk_module)
    else:
        from handlers.compliance.archive.sandbox_source import SandboxSource

        source = SandboxSource(runtime.wecom)
    keys = PrivateKeys({v: k.get_secret_value() for v, k in cfg.archive_private_keys.items()})
    return ArchiveIntake(source=source, keys=keys, sessions=runtime.sessions, clock=runtime.clock,
                         outbox=runtime.outbox, settings=runtime.settings,
                         rules=rules_loader(runtime.settings.playbook.sop_dir),
                         playbook=lambda: runtime.playbook.current, batch=cfg.archive_batch, poll_s=cfg.archive_poll_s)
