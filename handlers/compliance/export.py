"""``scrm audit export``: the trail of a period as JSON lines or CSV, for an auditor.

Customers' ids are personal data: an export shows each as a pseudonym (the same customer always
gets the same one, so an auditor can follow a customer through a period) unless the exporting
auditor asks for them in full (``--reveal``); either way the export itself goes into the console's
audit log. Each line keeps ``hash`` and ``prev_hash``, so a revealed export can be re-verified
outside the service with nothing but SHA-256 (``handlers/compliance/chain.py`` says how).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.compliance.chain import FIELDS
from handlers.compliance.models import TrailRecord
from scrm.kernel.logs import pseudonym

COLUMNS = (*FIELDS, "hash")


def shown(record: Mapping[str, Any], *, reveal: bool) -> dict[str, Any]:
    out = {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in record.items()}
    if not reveal:
        out["audience"] = [pseudonym(a) for a in record["audience"]]
    return out


async def period(db: AsyncSession, since: datetime, until: datetime, *, batch: int = 5000) \
        -> AsyncIterator[dict[str, Any]]:
    """Records sent in [since, until), in chain order."""
    after = 0
    while True:
        rows = (await db.execute(select(TrailRecord).where(TrailRecord.seq > after, TrailRecord.at >= since,
                                                           TrailRecord.at < until)
                                 .order_by(TrailRecord.seq).limit(batch))).scalars().all()
        if not rows:
            return
        for r in rows:
            yield {c: getattr(r, c) for c in COLUMNS}
        after = rows[-1].seq


def json_line(record: Mapping[str, Any]) -> str:
    return json.dumps(record, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def csv_header() -> str:
    return ",".join(COLUMNS)


def csv_line(record: Mapping[str, Any]) -> str:
    buf = io.StringIO()
    cells = [";".join(record[c]) if isinstance(record[c], list) else record[c] for c in COLUMNS]
    csv.writer(buf, lineterminator="").writerow(cells)
    return buf.getvalue()
