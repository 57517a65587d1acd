"""A full sync run queues only as fast as the outbox sends (``max_queued``)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import update

from handlers.crm.runner import run_sync
from scrm.kernel.models import OutboxAction
from tests.handlers.crm.receiver import CrmStack, RecordingProgress, crm_stack
from tests.support.service import wait_until

MARK_TAG = "externalcontact/mark_tag"



async def test_run_waits_while_the_outbox_holds_enough(db_url: str, tmp_path: Path) -> None:
    async with crm_stack(db_url, tmp_path) as c:
        s, rt = c.s, c.s.runtime
        await c.seed_quietly([{"crm_id": f"K{i}", "external_userid": ext, "attributes": {"tier": "V3"}}
                              for i, ext in enumerate(s.ids.customers.values())])
        await c.queue_pending_calls(5)
        progress = RecordingProgress()
        run = asyncio.create_task(run_sync(rt.sessions, rt.outbox, s.wecom, rt.playbook.current.tag_groups,
                                           s.clock, "g1", chunk=3, max_queued=5, progress=progress))

        async def waiting() -> bool:
            return any("waiting for the outbox to send (5 queued)" in n for n in progress.notes)

        await wait_until(waiting)
        assert not run.done() and await s.outbox_rows(MARK_TAG) == []
        async with rt.sessions() as session, session.begin():  # the outbox sent them meanwhile
            await session.execute(update(OutboxAction).where(OutboxAction.idempotency_key.startswith(
                "crmtag:earlier:")).values(status="sent"))
        s.clock.advance(1)
        # 3 queued: room for one more chunk (6), then it waits until the service sends.
        await wait_until(lambda: _has_rows(c, 6))
        assert not run.done()
        while not run.done():
            await s.send()
            await asyncio.sleep(0.01)
        report, _ = run.result()
        await s.send()
        assert report.calls == 10 and set(c.mark_tag_pairs().values()) == {1}


async def _has_rows(c: CrmStack, n: int) -> bool:
    return len(await c.s.outbox_rows(MARK_TAG)) == n
