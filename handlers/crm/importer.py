"""File import: CSV and JSONL drops of customers or key events, streamed.

Rows are read and validated a chunk at a time in a worker thread (the file is never loaded
whole, the event loop never waits on the disk) and stored one transaction per chunk; a bad row
is reported as ``file:line: field: message`` and skipped, the good rows are kept. The kind is chosen by the
content: rows with an ``event_id`` are key events, rows with a ``chat_id`` and no ``crm_id`` are
groups (``chat_id, employer, payday``), the rest are customers.

CSV customers: ``crm_id, unionid, external_userid`` and any other column as an attribute (list
attributes as ``payroll|mortgage``; an empty cell leaves the attribute as it was). CSV events:
``event_id, crm_id, kind, at`` and any other column into the payload (or one ``payload`` column
of JSON). JSONL: one object per line, customers either ``{"crm_id":..., "attributes":{...}}``
or flat. The README's "CRM integration" section is the reference for the columns.

Text is UTF-8 by default, with or without a byte-order mark; a Chinese bank's Excel exports
are often GBK or GB18030, named with ``encoding``. Files are decoded a line at a time, which is
sound for these encodings (no byte of a multi-byte character is a newline, comma or quote) but
not for UTF-16 or UTF-32, which are refused.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import csv
import io
import json
from collections.abc import Awaitable, Callable, Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.crm import store
from handlers.crm.records import CustomerRecord, EventRecord, GroupRecord, explain, loads, shape_problem
from scrm.kernel.clock import Clock
from scrm.kernel.inbox import Inbox
from scrm.kernel.progress import Progress

Kind = Literal["auto", "customers", "events", "groups"]
CHUNK = 500
# The report keeps this many error lines in memory; every line still goes to ``on_error``.
MAX_KEPT_ERRORS = 1000
SUFFIXES = (".csv", ".jsonl", ".ndjson")
_IDENTITY = ("crm_id", "unionid", "external_userid")

Row = tuple[int, dict[str, Any] | str, int]  # (line, row or error message, bytes read so far)
Parsed = tuple[int, CustomerRecord | EventRecord | GroupRecord | str, int]


@dataclass
class ImportReport:
    path: str
    rows: int = 0
    stored: int = 0
    changed: int = 0
    new_events: int = 0
    error_count: int = 0
    errors: list[str] = field(default_factory=list)  # the first MAX_KEPT_ERRORS of error_count

    def add_error(self, line: str) -> None:
        self.error_count += 1
        if len(self.errors) < MAX_KEPT_ERRORS:
            self.errors.append(line)

    def summary(self) -> str:
        return (f"{self.path}: {self.rows} rows, {self.stored} stored, {self.changed} customers changed, "
                f"{self.new_events} new events, {self.error_count} errors")


class FileFormatError(Exception):
    """The file as a whole cannot be read (unknown format, missing header)."""


DEFAULT_ENCODING = "utf-8-sig"  # UTF-8, with or without the byte-order mark Excel writes
_UTF8 = frozenset({"utf-8", "utf-8-sig"})
# What the line-at-a-time reading relies on: these characters are these single bytes.
_STRUCTURE = "\r\n,\"{}[]:"


def check_encoding(name: str) -> str:
    """The codec's canonical name, or ``ValueError`` (one line) for a name we cannot read with."""
    hint = "use utf-8 (the default), gbk or gb18030"
    try:
        codec = codecs.lookup(name).name
        ascii_compatible = _STRUCTURE.encode("ascii").decode(codec) == _STRUCTURE
    except LookupError:  # also a transform such as rot13 or hex: not a text encoding
        raise ValueError(f"unknown encoding {name!r}; {hint}") from None
    except UnicodeDecodeError:
        ascii_compatible = False
    if not ascii_compatible:
        raise ValueError(f"encoding {name!r} is not supported (lines are read one at a time); {hint}")
    return codec


def _not_text(codec: str) -> str:
    name = "UTF-8" if codec in _UTF8 else codec.upper()
    return f"not {name} text (save the file as {name})"


def _decode(data: bytes, n: int, codec: str, label: str) -> str:
    """One line; a byte-order mark starts the first line only (UTF-8's, or GB18030's own)."""
    if n == 1 and codec not in _UTF8 and data.startswith(codecs.BOM_UTF8):
        # Decoded as GBK the mark becomes "锘" and the header a mystery: say what happened.
        raise FileFormatError(f"{label}:1: starts with a UTF-8 byte-order mark: the file is UTF-8, "
                              f"not {codec.upper()}")
    text = data.decode(codec)
    return text.removeprefix("\ufeff") if n == 1 else text


def _lines(raw: io.BufferedReader, bad: set[int], codec: str, label: str) -> Iterator[str]:
    """Decode line by line: a line in another encoding is one bad row, not the end of the file."""
    for n, data in enumerate(raw, 1):
        try:
            yield _decode(data, n, codec, label)
        except UnicodeDecodeError:
            bad.add(n)
            yield data.decode(codec, errors="replace")


def _csv_rows(raw: io.BufferedReader, label: str, codec: str) -> Iterator[Row]:
    bad: set[int] = set()
    reader = csv.DictReader(_lines(raw, bad, codec, label))
    try:
        fields = reader.fieldnames
    except csv.Error as exc:
        raise FileFormatError(f"{label}:1: unreadable header row: {exc}") from None
    if not fields:
        raise FileFormatError(f"{label}: empty file or no header row")
    if bad:
        raise FileFormatError(f"{label}:1: header row is {_not_text(codec)}")
    if "crm_id" not in fields and "chat_id" not in fields:
        # Every row would fail the same way: one clear line instead of one per row.
        raise FileFormatError(f"{label}:1: no crm_id column in the header row")
    end = reader.line_num
    while True:
        start = end + 1  # a quoted cell may span lines: the record is lines start..end
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:  # the reader resumes at the next line
            end = reader.line_num
            yield end, f"bad CSV: {exc}", raw.tell()
            continue
        end = reader.line_num
        broken = [n for n in range(start, end + 1) if n in bad]
        if broken:
            yield broken[0], _not_text(codec), raw.tell()
        elif None in row:
            yield end, "more cells than header columns", raw.tell()
        else:
            yield end, {k: v for k, v in row.items() if v not in ("", None)}, raw.tell()


def _jsonl_rows(raw: io.BufferedReader, label: str, codec: str) -> Iterator[Row]:
    for n, data in enumerate(raw, 1):
        try:
            line = _decode(data, n, codec, label)
        except UnicodeDecodeError:
            yield n, _not_text(codec), raw.tell()
            continue
        if line.strip():
            yield n, _json_row(line), raw.tell()


def _json_row(line: str) -> dict[str, Any] | str:
    """The line's object, or why it is no record (NaN, too deep, unstorable text ...)."""
    try:
        obj = loads(line)
    except json.JSONDecodeError as exc:
        return f"not JSON: {exc.msg}"
    except ValueError as exc:
        return f"not JSON: {exc}"
    if not isinstance(obj, dict):
        return "not a JSON object"
    return shape_problem(obj) or obj


def _rows(path: Path, label: str, codec: str) -> Generator[Row, None, None]:
    """Rows one at a time; the file is never read whole (a generator: opens on the first next())."""
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise FileFormatError(f"{label}: unknown format (use .csv or .jsonl)")
    with path.open("rb") as raw:
        if suffix == ".csv":
            yield from _csv_rows(raw, label, codec)
        else:
            yield from _jsonl_rows(raw, label, codec)


def _customer(row: dict[str, Any]) -> CustomerRecord:
    if "attributes" not in row:
        row = {**{k: row[k] for k in _IDENTITY if k in row},
               "attributes": {k: v for k, v in row.items() if k not in _IDENTITY}}
    return CustomerRecord.model_validate(row)


def _event(row: dict[str, Any]) -> EventRecord:
    if "payload" not in row:
        base = ("event_id", "crm_id", "kind", "at")
        row = {**{k: row[k] for k in base if k in row}, "payload": {k: v for k, v in row.items() if k not in base}}
    elif isinstance(row["payload"], str):  # a CSV "payload" column of JSON
        row = {**row, "payload": _json_payload(row["payload"])}
    return EventRecord.model_validate(row)


def _json_payload(text: str) -> Any:
    try:
        payload = loads(text)
    except ValueError as exc:
        raise ValueError(f"payload: not JSON: {exc}") from None
    problem = shape_problem(payload)
    if problem:
        raise ValueError(f"payload: {problem}")
    return payload


def _parse(row: dict[str, Any] | str, kind: Kind) -> CustomerRecord | EventRecord | GroupRecord | str:
    if isinstance(row, str):
        return row
    try:
        if kind == "events" or (kind == "auto" and "event_id" in row):
            return _event(row)
        if kind == "groups" or (kind == "auto" and "chat_id" in row and "crm_id" not in row):
            return GroupRecord.model_validate(row)
        return _customer(row)
    except ValidationError as exc:
        return explain(exc)
    except (ValueError, TypeError) as exc:
        return str(exc)


def _next_batch(rows: Iterator[Row], kind: Kind, size: int) -> list[Parsed]:
    """Read and validate up to ``size`` rows (runs in a worker thread: file I/O off the loop)."""
    batch: list[Parsed] = []
    for line, row, position in rows:
        batch.append((line, _parse(row, kind), position))
        if len(batch) >= size:
            break
    return batch


async def import_file(path: Path, sessions: async_sessionmaker[AsyncSession], inbox: Inbox, clock: Clock, *,
                      kind: Kind = "auto", progress: Progress | None = None, chunk: int = CHUNK,
                      name: str | None = None, on_error: Callable[[str], None] | None = None,
                      on_chunk: Callable[[], Awaitable[None]] | None = None,
                      encoding: str = DEFAULT_ENCODING, tiers: store.TierRule | None = None) -> ImportReport:
    """Import one file; returns counts and the bad rows as ``file:line: message``.

    ``name`` labels the file in error lines (default: ``path``); ``on_error`` gets every error
    line as it is found; ``on_chunk`` runs after each chunk (the drop folder renews its claim);
    ``encoding`` is the file's text encoding (``ValueError`` if :func:`check_encoding` refuses it).
    Reading and parsing happen in a worker thread a chunk at a time, so the event loop stays
    free and memory stays flat whatever the file's size. Storing is an upsert (customers merge,
    events dedup by event_id): importing a file again, whole or after a crash, is harmless.
    """
    label = name or str(path)
    codec = check_encoding(encoding)
    report = ImportReport(label)
    total = (await asyncio.to_thread(path.stat)).st_size
    rows = _rows(path, label, codec)
    position = 0
    try:
        while batch := await asyncio.to_thread(_next_batch, rows, kind, chunk):
            customers: list[CustomerRecord] = []
            events: list[EventRecord] = []
            groups: list[GroupRecord] = []
            for line, item, _ in batch:
                report.rows += 1
                if isinstance(item, CustomerRecord):
                    customers.append(item)
                elif isinstance(item, EventRecord):
                    events.append(item)
                elif isinstance(item, GroupRecord):
                    groups.append(item)
                else:
                    error = f"{label}:{line}: {item}"
                    report.add_error(error)
                    if on_error is not None:
                        on_error(error)
            position = batch[-1][2]
            await _store(sessions, inbox, clock, customers, events, report, tiers, groups)
            if progress is not None:
                progress.update(position, f"{report.rows:,} rows, {report.error_count} errors")
            if on_chunk is not None:
                await on_chunk()
    finally:
        # A cancelled import may leave the generator running in its thread; it closes the file
        # itself when that read ends.
        with contextlib.suppress(ValueError):
            rows.close()
    if progress is not None:
        progress.done(total if total else position, f"{report.rows:,} rows, {report.stored:,} stored, "
                                                    f"{report.error_count} errors")
    return report


async def _store(sessions: async_sessionmaker[AsyncSession], inbox: Inbox, clock: Clock,
                 customers: list[CustomerRecord], events: list[EventRecord], report: ImportReport,
                 tiers: store.TierRule | None = None, groups: list[GroupRecord] | None = None) -> None:
    """One transaction per chunk: a crash loses at most the chunk in flight."""
    groups = groups or []
    if not customers and not events and not groups:
        return
    async with sessions() as session, session.begin():
        now = clock.now()
        if customers:
            res = await store.upsert_customers(session, inbox, customers, now, tiers=tiers)
            report.changed += len(res.changed)
            report.new_events += res.new_events  # tier moves
        if events:
            res = await store.add_events(session, inbox, events, now)
            report.new_events += res.new_events
        if groups:
            await store.upsert_groups(session, inbox, groups, now)
    inbox.wake()
    report.stored += len(customers) + len(events) + len(groups)
