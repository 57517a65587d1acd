"""File import: CSV and JSONL drops of customers or key events, streamed.

Rows are read one at a time and stored in chunks (one transaction each); a bad row is reported
as ``file:line: field: message`` and skipped, the good rows are kept. The kind is chosen by the
content: rows with an ``event_id`` are key events, the rest are customers.

CSV customers: ``crm_id, unionid, external_userid`` and any other column as an attribute (list
attributes as ``payroll|mortgage``; an empty cell leaves the attribute as it was). CSV events:
``event_id, crm_id, kind, at`` and any other column into the payload. JSONL: one object per
line, customers either ``{"crm_id":..., "attributes":{...}}`` or flat.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from scrm.clock import Clock
from scrm.crm import store
from scrm.crm.progress import Progress
from scrm.crm.records import CustomerRecord, EventRecord, explain
from scrm.inbox import Inbox

Kind = Literal["auto", "customers", "events"]
CHUNK = 500
_IDENTITY = ("crm_id", "unionid", "external_userid")


@dataclass
class ImportReport:
    path: str
    rows: int = 0
    stored: int = 0
    changed: int = 0
    new_events: int = 0
    errors: list[str] = field(default_factory=list)


class FileFormatError(Exception):
    """The file as a whole cannot be read (unknown format, missing header)."""


def _rows(path: Path) -> Iterator[tuple[int, dict[str, Any] | str, int]]:
    """(line number, row or an error message, bytes read so far)."""
    with path.open("rb") as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
        if path.suffix.lower() in (".jsonl", ".ndjson"):
            for n, line in enumerate(text, 1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as exc:
                    yield n, f"not JSON: {exc.msg}", raw.tell()
                    continue
                yield n, obj if isinstance(obj, dict) else "not a JSON object", raw.tell()
        elif path.suffix.lower() == ".csv":
            reader = csv.DictReader(text)
            if not reader.fieldnames:
                raise FileFormatError(f"{path}: empty file or no header row")
            for row in reader:
                if None in row:
                    yield reader.line_num, "more cells than header columns", raw.tell()
                    continue
                yield reader.line_num, {k: v for k, v in row.items() if v not in ("", None)}, raw.tell()
        else:
            raise FileFormatError(f"{path}: unknown format (use .csv or .jsonl)")


def _customer(row: dict[str, Any]) -> CustomerRecord:
    if "attributes" not in row:
        row = {**{k: row[k] for k in _IDENTITY if k in row},
               "attributes": {k: v for k, v in row.items() if k not in _IDENTITY}}
    return CustomerRecord.model_validate(row)


def _event(row: dict[str, Any]) -> EventRecord:
    if "payload" not in row:
        base = ("event_id", "crm_id", "kind", "at")
        row = {**{k: row[k] for k in base if k in row}, "payload": {k: v for k, v in row.items() if k not in base}}
    elif isinstance(row["payload"], str):
        row = {**row, "payload": json.loads(row["payload"])}
    return EventRecord.model_validate(row)


async def import_file(path: Path, sessions: async_sessionmaker[AsyncSession], inbox: Inbox, clock: Clock, *,
                      kind: Kind = "auto", progress: Progress | None = None, chunk: int = CHUNK) -> ImportReport:
    """Import one file; returns counts and every bad row as ``file:line: message``."""
    report = ImportReport(str(path))
    total = (await asyncio.to_thread(path.stat)).st_size
    customers: list[CustomerRecord] = []
    events: list[EventRecord] = []

    async def flush() -> None:
        if not customers and not events:
            return
        async with sessions() as session, session.begin():
            now = clock.now()
            if customers:
                res = await store.upsert_customers(session, inbox, customers, now)
                report.changed += len(res.changed)
            if events:
                res = await store.add_events(session, inbox, events, now)
                report.new_events += res.new_events
        report.stored += len(customers) + len(events)
        customers.clear()
        events.clear()

    position = 0
    for line, row, position in _rows(path):
        report.rows += 1
        if isinstance(row, str):
            report.errors.append(f"{path}:{line}: {row}")
            continue
        is_event = kind == "events" or (kind == "auto" and "event_id" in row)
        try:
            if is_event:
                events.append(_event(row))
            else:
                customers.append(_customer(row))
        except ValidationError as exc:
            report.errors.append(f"{path}:{line}: {explain(exc)}")
        except (ValueError, TypeError) as exc:
            report.errors.append(f"{path}:{line}: {exc}")
        if len(customers) + len(events) >= chunk:
            await flush()
        if progress is not None:
            progress.update(position, f"{report.rows:,} rows, {len(report.errors)} errors")
    await flush()
    if progress is not None:
        progress.done(total if total else position, f"{report.rows:,} rows, {report.stored:,} stored, "
                                                    f"{len(report.errors)} errors")
    return report
