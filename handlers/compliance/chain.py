"""The chain itself: how a record is hashed, how one is appended, and how a trail is verified.

A record's hash is SHA-256 over ``prev_hash`` and the record's fields as canonical JSON (sorted
keys, no spaces, UTC ISO times), so anyone can re-check an exported trail with a few lines of
code and nothing from this service. Appending locks the head row (``SELECT … FOR UPDATE`` on
PostgreSQL; SQLite has one writer anyway), so the numbering has no gaps and no forks however many
instances record at once.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from handlers.compliance.models import GENESIS, TrailHead, TrailRecord
from scrm.adapters.db.engine import dialect_of, insert_ignore, table_of

HEAD_ID = 1
# The fields a record's hash covers, in the export's column order (``hash`` itself excluded).
FIELDS = ("seq", "at", "kind", "api", "outbox_key", "msgid", "sender", "audience", "audience_type", "material",
          "material_hash", "text_hash", "decisions", "retain_until", "prev_hash")


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return value


def canonical(record: Mapping[str, Any]) -> str:
    """The text a record's hash is taken over."""
    return json.dumps({k: _plain(record[k]) for k in FIELDS}, ensure_ascii=False, sort_keys=True,
                      separators=(",", ":"))


def hash_of(record: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical(record).encode()).hexdigest()


def content_hash(content: Any) -> str:
    """SHA-256 of any JSON-able content, canonically (the message as queued, a material)."""
    return hashlib.sha256(json.dumps(content, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
                          .encode()).hexdigest()


async def append(conn: AsyncSession | AsyncConnection, fields: Mapping[str, Any]) -> int:
    """Append one record (``fields``: every name of :data:`FIELDS` but ``seq`` and ``prev_hash``)
    in the caller's transaction; returns its number."""
    return (await append_many(conn, [fields]))[0]


# Built once: a group commit of sent messages appends through these on every batch.
_INSERT_RECORD = insert(table_of(TrailRecord))
_MOVE_HEAD = (update(table_of(TrailHead)).where(table_of(TrailHead).c.id == HEAD_ID)
              .values(seq=bindparam("new_seq"), hash=bindparam("new_hash")))


async def append_many(conn: AsyncSession | AsyncConnection, many: Sequence[Mapping[str, Any]]) -> list[int]:
    """Append records in order, in the caller's transaction, under one lock of the head: one
    read of the head, one insert of every record (an ``executemany``) and one move of the head,
    however many there are. Each record still links to the one before it, as if appended alone.
    Returns their numbers."""
    if not many:
        return []
    head = await _locked_head(conn)
    seq, prev = int(head.seq), str(head.hash)
    rows: list[dict[str, Any]] = []
    for fields in many:
        seq += 1
        record = {**fields, "seq": seq, "prev_hash": prev}
        prev = hash_of(record)
        rows.append({**record, "hash": prev})
    await conn.execute(_INSERT_RECORD, rows)
    await conn.execute(_MOVE_HEAD, {"new_seq": seq, "new_hash": prev})
    return [int(r["seq"]) for r in rows]


async def _locked_head(conn: AsyncSession | AsyncConnection) -> Any:
    """The head row, locked. The migration makes it; an empty trail without one (a database
    emptied table by table) gets a fresh one — on a key, so two first appenders make one — but a
    trail with records and no head was tampered with, and nothing more is appended to it."""
    locked = select(TrailHead.seq, TrailHead.hash).where(TrailHead.id == HEAD_ID).with_for_update()
    head = (await conn.execute(locked)).one_or_none()
    if head is not None:
        return head
    if (await conn.execute(select(TrailRecord.seq).limit(1))).first() is not None:
        raise RuntimeError("trail_head is missing but the trail has records: see scrm audit verify")
    await conn.execute(insert_ignore(dialect_of(conn), table_of(TrailHead), ["id"]),
                       {"id": HEAD_ID, "seq": 0, "hash": GENESIS, "base_seq": 0, "base_hash": GENESIS})
    return (await conn.execute(locked)).one()


@dataclass
class Verdict:
    """What :func:`verify` found: ``problems`` empty means the trail is intact."""

    checked: int = 0
    first_seq: int = 0
    last_seq: int = 0
    head_hash: str = GENESIS
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


async def records(conn: AsyncSession | AsyncConnection, *, batch: int = 5000) -> AsyncIterator[dict[str, Any]]:
    """Every record in ``seq`` order, read a batch at a time (a trail of years does not fit in memory)."""
    after = -1
    while True:
        rows = (await conn.execute(select(TrailRecord).where(TrailRecord.seq > after).order_by(TrailRecord.seq)
                                   .limit(batch))).scalars().all()
        if not rows:
            return
        for r in rows:
            yield {c: getattr(r, c) for c in (*FIELDS, "hash")}
        after = rows[-1].seq


async def verify(conn: AsyncSession | AsyncConnection, *, max_problems: int = 50) -> Verdict:
    """Walk the chain from its base: every hash re-computed, every link and number checked, and
    the head compared with the last record (a deleted tail shows there)."""
    head = (await conn.execute(select(TrailHead).where(TrailHead.id == HEAD_ID))).scalar_one_or_none()
    base_seq, prev = (head.base_seq, head.base_hash) if head is not None else (0, GENESIS)
    verdict = Verdict(first_seq=base_seq + 1, last_seq=base_seq, head_hash=prev)
    expected = base_seq + 1

    def problem(text: str) -> None:
        if len(verdict.problems) < max_problems:
            verdict.problems.append(text)

    async for r in records(conn):
        verdict.checked += 1
        if r["seq"] <= base_seq:
            problem(f"record {r['seq']}: before the chain's base {base_seq} (purged records are gone for good)")
            continue
        if r["seq"] != expected:
            problem(f"records {expected}–{r['seq'] - 1} are missing (deleted)" if r["seq"] > expected
                    else f"record {r['seq']}: number out of order")
        if r["prev_hash"] != prev:
            problem(f"record {r['seq']}: does not follow the record before it (one was deleted, inserted or changed)")
        if hash_of(r) != r["hash"]:
            problem(f"record {r['seq']}: its content was changed after it was written")
        prev, expected = r["hash"], r["seq"] + 1
        verdict.last_seq = r["seq"]
    verdict.head_hash = prev
    if head is not None and (head.seq != verdict.last_seq or head.hash != prev):
        problem(f"the chain ends at record {verdict.last_seq} but its head says {head.seq}: records at the end "
                "were deleted, or the head was changed")
    if head is None and verdict.checked:
        problem("the trail has records but no head: the head row was deleted")
    return verdict
