"""Retention: expired records leave the trail from its start, and the chain stays verifiable.

Only a *prefix* is ever purged — the records from the chain's base up to the last one before the
first record still to be kept — so the kept records remain one unbroken chain. The head keeps the
number and hash of the last purged record (``base_seq``/``base_hash``): verification starts there.
A record kept longer (another kind's longer retention) holds back the purge of those after it;
that keeps a little more than required, never less.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.compliance.chain import HEAD_ID
from handlers.compliance.models import TrailHead, TrailRecord


async def purge(session: AsyncSession, today: date) -> int:
    """Delete the expired prefix of the trail (records whose ``retain_until`` is before ``today``);
    returns how many went."""
    head = (await session.execute(select(TrailHead).where(TrailHead.id == HEAD_ID).with_for_update())
            ).scalar_one_or_none()
    if head is None:
        return 0
    keep_from = (await session.execute(select(func.min(TrailRecord.seq))
                                       .where(TrailRecord.retain_until >= today))).scalar()
    last = head.seq if keep_from is None else int(keep_from) - 1
    if last <= head.base_seq:
        return 0
    base_hash = (await session.execute(select(TrailRecord.hash).where(TrailRecord.seq == last))).scalar_one()
    gone = await session.execute(delete(TrailRecord).where(TrailRecord.seq <= last))
    await session.execute(update(TrailHead).where(TrailHead.id == HEAD_ID).values(base_seq=last, base_hash=base_hash))
    return int(gone.rowcount)  # type: ignore[attr-defined]
