"""What the console's case pages read and change (through ``handlers.compliance.api``): the case
list, one case with its message in context, and a triage decision. Access checks and the audit
of every view are the console's; these only read and write."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.compliance.models import ArchiveMessage, ReviewCase

STATUSES = ("open", "dismissed", "escalated")
DECISIONS = {"dismiss": "dismissed", "escalate": "escalated"}
CONTEXT = 5  # messages before and after the one that hit, in the same conversation


@dataclass(frozen=True)
class CaseLine:
    case: ReviewCase
    sender: str
    conversation: str
    msgtime: datetime


@dataclass(frozen=True)
class CaseInContext:
    case: ReviewCase
    message: ArchiveMessage
    before: list[ArchiveMessage]
    after: list[ArchiveMessage]


async def list_cases(db: AsyncSession, *, status: str = "", rule: str = "", limit: int = 200) -> list[CaseLine]:
    """Newest first, filtered by status and rule ("" = any); no message content."""
    q = (select(ReviewCase, ArchiveMessage.sender, ArchiveMessage.conversation, ArchiveMessage.msgtime)
         .join(ArchiveMessage, ArchiveMessage.seq == ReviewCase.message_seq)
         .order_by(ReviewCase.id.desc()).limit(limit))
    if status:
        q = q.where(ReviewCase.status == status)
    if rule:
        q = q.where(ReviewCase.rule == rule)
    return [CaseLine(c, s, conv, t) for c, s, conv, t in (await db.execute(q)).all()]


async def case_counts(db: AsyncSession) -> dict[str, int]:
    rows = (await db.execute(select(ReviewCase.status, func.count()).group_by(ReviewCase.status))).all()
    return {str(s): int(n) for s, n in rows}


async def case_in_context(db: AsyncSession, case_id: int, *, around: int = CONTEXT) -> CaseInContext | None:
    case = await db.get(ReviewCase, case_id)
    if case is None:
        return None
    message = await db.get(ArchiveMessage, case.message_seq)
    if message is None:
        return None
    same = ArchiveMessage.conversation == message.conversation
    before = (await db.scalars(select(ArchiveMessage).where(same, ArchiveMessage.seq < message.seq)
                               .order_by(ArchiveMessage.seq.desc()).limit(around))).all()
    after = (await db.scalars(select(ArchiveMessage).where(same, ArchiveMessage.seq > message.seq)
                              .order_by(ArchiveMessage.seq).limit(around))).all()
    return CaseInContext(case, message, list(reversed(before)), list(after))


async def triage_case(db: AsyncSession, case_id: int, decision: str, *, by: str, at: datetime, note: str = "") -> bool:
    """Dismiss or escalate an open case (in ``db``'s transaction); False when it is not open
    any more (someone decided first) or does not exist."""
    done = await db.execute(update(ReviewCase).where(ReviewCase.id == case_id, ReviewCase.status == "open")
                            .values(status=DECISIONS[decision], assignee=by[:64], note=note[:2000], updated_at=at))
    return bool(done.rowcount)  # type: ignore[attr-defined]
