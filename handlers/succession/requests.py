"""Move requests (在职继承) as the CLI, a file and the CRM give them: validated, then stored as
:class:`SuccessionMove` inbox events (the running service plans them; the same request id twice
is one event)."""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.succession.events import SuccessionMove
from handlers.succession.rules import MAX_MESSAGE
from scrm.kernel.inbox import Inbox

MAX_CUSTOMERS = 5000


class MoveRecord(BaseModel):
    """One move as the CRM posts it (``POST /crm/v1/succession:move``)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, populate_by_name=True)

    request_id: str = Field(min_length=1, max_length=128)
    handover: str = Field(alias="from", min_length=1, max_length=64)
    takeover: str = Field(alias="to", min_length=1, max_length=64)
    external_userids: list[str] = Field(min_length=1, max_length=MAX_CUSTOMERS)
    message: str = Field("", max_length=MAX_MESSAGE)


def request_id_of(handover: str, takeover: str, external_userids: Sequence[str], message: str) -> str:
    """A stable id for a request given without one: the same move asked twice is one move."""
    text = "\n".join([handover, takeover, message, *sorted(set(external_userids))])
    return "h" + hashlib.sha256(text.encode()).hexdigest()[:32]


async def store_moves(session: AsyncSession, inbox: Inbox, moves: Sequence[MoveRecord], origin: str,
                      now: datetime) -> int:
    for m in moves:
        event = SuccessionMove(at=now, request_id=m.request_id, handover=m.handover, takeover=m.takeover,
                               external_userids=tuple(m.external_userids), message=m.message, origin=origin)
        await inbox.add_internal(session, event, f"succession:move:{m.request_id}")
    return len(moves)


def explain(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"])
    return f"{where}: {err['msg']}" if where else str(err["msg"])


@dataclass
class ParsedFile:
    moves: list[MoveRecord]
    errors: list[str]


def parse_move_file(data: bytes, name: str) -> ParsedFile:
    """CSV ``from,to,external_userid[,message]``: one move per (from, to, message), every bad
    row as ``file:line: message``."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        return ParsedFile([], [f"{name}:{line}: not UTF-8"])
    reader = csv.DictReader(io.StringIO(text))
    need = {"from", "to", "external_userid"}
    if reader.fieldnames is None or not need <= set(reader.fieldnames):
        return ParsedFile([], [f"{name}:1: header must name from,to,external_userid (and optionally message)"])
    groups: dict[tuple[str, str, str], list[str]] = {}
    errors: list[str] = []
    for row in reader:
        line = reader.line_num
        src, dst, ext = ((row.get(k) or "").strip() for k in ("from", "to", "external_userid"))
        message = (row.get("message") or "").strip()
        missing = [k for k, v in (("from", src), ("to", dst), ("external_userid", ext)) if not v]
        if missing:
            errors.append(f"{name}:{line}: {', '.join(missing)}: empty")
        elif src == dst:
            errors.append(f"{name}:{line}: from and to are the same member")
        elif len(message) > MAX_MESSAGE:
            errors.append(f"{name}:{line}: message: at most {MAX_MESSAGE} characters")
        else:
            groups.setdefault((src, dst, message), []).append(ext)
    moves = [MoveRecord.model_validate({"request_id": request_id_of(s, d, exts, msg), "from": s, "to": d,
                                        "external_userids": exts, "message": msg})
             for (s, d, msg), exts in groups.items()]
    return ParsedFile(moves, errors)
