"""Sent hooks in a group commit: k welcomes recorded together cost the compliance trail one
head read, one insert of k records and one head move; each is still fenced by its lease, so a
welcome whose lease went to another worker is neither recorded ``sent`` nor put on the trail."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from sqlalchemy import event, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from handlers.compliance.chain import verify
from handlers.compliance.models import TrailRecord
from scrm.kernel.clock import FakeClock
from scrm.kernel.models import OutboxAction
from scrm.kernel.outbox import PRIORITY_WELCOME, Outcome
from scrm.kernel.service import Runtime
from tests.conftest import make_settings
from tests.support.service import running_service

WELCOME = "externalcontact/send_welcome_msg"


@contextmanager
def counted(engine: AsyncEngine) -> Iterator[Counter[str]]:
    counts: Counter[str] = Counter()

    def seen(conn: Any, cursor: Any, statement: str, params: Any, context: Any, executemany: bool) -> None:
        counts[" ".join(statement.split()[:3])] += 1  # "SELECT trail_head.seq, ..." → its first words

    event.listen(engine.sync_engine, "before_cursor_execute", seen)
    try:
        yield counts
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", seen)


async def queue_welcomes(runtime: Runtime, clock: FakeClock, customers: list[str]) -> None:
    async with runtime.sessions() as s, s.begin():
        for ext in customers:
            await runtime.outbox.add(s, f"welcome:code-{ext}", WELCOME,
                                     {"welcome_code": f"code-{ext}", "text": {"content": "您好"}},
                                     priority=PRIORITY_WELCOME, not_after=clock.now() + timedelta(seconds=20),
                                     about={"userid": "mgr000", "external_userid": ext})


async def send_together(runtime: Runtime, *, lose_lease_of: str | None = None) -> list[dict[str, Any]]:
    """Claim every queued welcome, then hand in all their outcomes in one loop turn (as calls
    returning together do), so they are recorded as one group. ``lose_lease_of``: that
    customer's welcome is taken over by another worker between its call and the recording."""
    claimed = await runtime.outbox._claim_batch(10, PRIORITY_WELCOME)
    rows = [row for row, decided in claimed if decided is None]
    if lose_lease_of is not None:
        async with runtime.engine.begin() as conn:
            await conn.execute(update(OutboxAction)
                               .where(OutboxAction.idempotency_key == f"welcome:code-{lose_lease_of}")
                               .values(lease_owner="outbox:another-instance"))
    await asyncio.gather(*(runtime.outbox._hand_in(row, Outcome("sent", result={"n": i}))
                           for i, row in enumerate(rows)))
    return rows


async def trail_and_verdict(runtime: Runtime) -> tuple[list[TrailRecord], bool]:
    async with runtime.sessions() as db:
        records = list((await db.scalars(select(TrailRecord).order_by(TrailRecord.seq))).all())
        verdict = await verify(db)
    return records, verdict.ok


async def test_welcomes_recorded_together_append_to_the_trail_with_one_head_read(db_url: str) -> None:
    clock = FakeClock()
    async with running_service(make_settings(db_url), clock=clock) as (runtime, _):
        await queue_welcomes(runtime, clock, ["wm-first"])  # one recorded alone first: the chain goes on from it
        assert len(await send_together(runtime)) == 1
        customers = ["wm-a", "wm-b", "wm-c", "wm-d"]
        await queue_welcomes(runtime, clock, customers)
        with counted(runtime.engine) as counts:
            rows = await send_together(runtime)
        assert len(rows) == 4
        async with runtime.sessions() as db:
            statuses = Counter((await db.scalars(select(OutboxAction.status))).all())
        assert statuses == Counter(sent=5)
        records, ok = await trail_and_verdict(runtime)
        assert ok
        # In claim order (the order they were queued), numbered without a gap.
        assert [(r.seq, r.audience) for r in records] == [(i + 1, [c]) for i, c in enumerate(["wm-first", *customers])]
        # One group: the head read and moved once, the records inserted by one executemany.
        assert counts["SELECT trail_head.seq, trail_head.hash"] == 1
        assert counts["INSERT INTO trail_record"] == 1
        assert counts["UPDATE trail_head SET"] == 1
        # A second group continues the chain from the first.
        await queue_welcomes(runtime, clock, ["wm-e", "wm-f"])
        await send_together(runtime)
        records, ok = await trail_and_verdict(runtime)
        assert ok and [r.seq for r in records] == list(range(1, 8))
        assert records[-1].prev_hash == records[-2].hash


async def test_a_welcome_whose_lease_was_taken_over_is_left_to_its_new_owner_and_not_on_the_trail(
        db_url: str) -> None:
    clock = FakeClock()
    async with running_service(make_settings(db_url), clock=clock) as (runtime, _):
        await queue_welcomes(runtime, clock, ["wm-a", "wm-b", "wm-c"])
        await send_together(runtime, lose_lease_of="wm-b")
        async with runtime.sessions() as db:
            rows = {r.idempotency_key: r for r in (await db.scalars(select(OutboxAction))).all()}
        assert [rows[f"welcome:code-{c}"].status for c in ("wm-a", "wm-b", "wm-c")] == ["sent", "sending", "sent"]
        assert rows["welcome:code-wm-b"].lease_owner == "outbox:another-instance"  # untouched: its owner records it
        records, ok = await trail_and_verdict(runtime)
        assert ok and [(r.seq, r.audience) for r in records] == [(1, ["wm-a"]), (2, ["wm-c"])]
