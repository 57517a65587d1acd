"""Backpressure for full tag syncs: keep about two minutes of mark_tag calls queued, not all.

Why: the outbox claims due rows by scanning the pending ones in priority order. With a whole
reconciliation queued at once (100,000 rows) each claim, welcome messages' included, took
~180 ms on SQLite (measured), and bench/tag_sync.py sent 20 % below the rate limit (ratio
1.25). Queuing only as fast as WeCom's limit lets the outbox send keeps claims cheap and costs
no time: the queue never runs dry, and the sync state says where to go on.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.crm.sync import KEY_PREFIX, MARK_TAG
from scrm.kernel.config import WeComSettings
from scrm.kernel.models import OutboxAction

# Queue at most this many seconds of calls at the mark_tag limit; resume at half of it. Half
# (60 s) is more than the scheduler's tick (30 s by default), which is how late a deferred
# nightly chunk may start, so the outbox always has work.
QUEUE_AHEAD_S = 120.0


def mark_tag_rate(wecom: WeComSettings) -> float:
    """mark_tag calls per second the client allows (``api_limits_per_minute`` or the default)."""
    return wecom.api_limits_per_minute.get(MARK_TAG, wecom.per_api_per_minute) / 60


def queue_cap(wecom: WeComSettings, chunk: int) -> int:
    """How many sync calls may wait in the outbox before a full sync pauses."""
    return max(2 * chunk, int(mark_tag_rate(wecom) * QUEUE_AHEAD_S))


def resume_after_s(queued: int, cap: int, wecom: WeComSettings) -> float:
    """Seconds until the queue is down to half the cap, at the limit's pace."""
    return max(1.0, (queued - cap / 2) / mark_tag_rate(wecom))


async def queued_calls(session: AsyncSession) -> int:
    """Sync calls not sent yet (pending or in flight)."""
    n = await session.scalar(select(func.count()).select_from(OutboxAction).where(
        OutboxAction.status.in_(("pending", "sending")), OutboxAction.idempotency_key.startswith(KEY_PREFIX)))
    return int(n or 0)
