"""What ``scrm succession list|show`` print: batches with counts, items with their reasons."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.succession.models import SuccessionBatch, SuccessionItem

STATES = ("planned", "waiting", "done", "refused", "limit", "timeout", "failed")


async def batch_lines(session: AsyncSession) -> list[str]:
    counts: dict[str, dict[str, int]] = {}
    for batch_id, status, n in (await session.execute(
            select(SuccessionItem.batch_id, SuccessionItem.status, func.count())
            .group_by(SuccessionItem.batch_id, SuccessionItem.status))).all():
        counts.setdefault(batch_id, {})[status] = int(n)
    batches = (await session.scalars(select(SuccessionBatch).order_by(SuccessionBatch.created_at,
                                                                      SuccessionBatch.id))).all()
    lines = []
    for b in batches:
        c = counts.get(b.id, {})
        parts = " ".join(f"{s}={c[s]}" for s in STATES if c.get(s))
        lines.append(f"{b.id}  {b.kind:<8} {b.handover_userid:<16} {b.status:<8} "
                     f"{b.created_at:%Y-%m-%d %H:%M}  {parts or '-'}")
    return lines


async def item_lines(session: AsyncSession, batch_id: str) -> list[str] | None:
    batch = await session.get(SuccessionBatch, batch_id)
    if batch is None:
        return None
    items = (await session.scalars(select(SuccessionItem).where(SuccessionItem.batch_id == batch_id)
                                   .order_by(SuccessionItem.id))).all()
    lines = [f"batch {batch.id}: {batch.kind} of {batch.handover_userid} ({batch.source}), {batch.status}"]
    for i in items:
        why = f"  {i.reason}" if i.reason and i.status != "done" else ""
        lines.append(f"  {i.target_type:<8} {i.target:<32} → {i.takeover_userid or '-':<16} {i.status}{why}")
    return lines
