"""A crash in the middle of a handover of hundreds of customers: the worker died after WeCom
acted on a call and before the outbox recorded it. Restarted, nothing is lost and nothing is
transferred twice (each customer has exactly one transfer in WeCom)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy import update

from handlers.succession.calls import KIND
from scrm.kernel.models import OutboxAction
from tests.handlers.succession.support import items, mirror_follows, write_rules
from tests.support.stack import stack

N = 250  # three calls of at most 100


async def test_kill_mid_handover_loses_nothing_and_transfers_nothing_twice(db_url: str, tmp_path: Path) -> None:
    async with stack(db_url, tmp_path, customers=True) as s:
        write_rules(s, "rules:\n  - handover: [lina]\n    to: gaofei\n")
        for i in range(N):
            c = s.state.add_customer(f"客户{i}")
            s.state.add_follow("lina", c.external_userid, s.clock.now().timestamp())
        await mirror_follows(s)
        await s.driver.delete_user("lina")
        await s.runtime.inbox.writer.sync()
        from tests.support.service import drain

        await drain(s.runtime)  # the plan is committed: calls queued, nothing sent
        rows = [r for r in await s.outbox_rows() if r.kind == KIND and r.payload["api"].endswith("transfer_customer")]
        assert len(rows) == 3 and sum(len(r.payload["body"]["external_userid"]) for r in rows) == N + 3
        # The first call reaches WeCom; the worker is killed before it records the answer.
        first = rows[0]
        await s.wecom.call(first.payload["api"], first.payload["body"])
        async with s.runtime.sessions() as session, session.begin():
            await session.execute(update(OutboxAction).where(OutboxAction.id == first.id).values(
                status="sending", attempts=1, lease_owner="killed", locked_until=s.clock.now()))
        s.clock.advance(1)
        await s.send()  # the restarted service: every call, the interrupted one asked again
        s.clock.advance(60)
        await s.step()
        got = await items(s)
        customers = [i for i in got if i.target_type == "customer"]
        assert len(customers) == N + 3 and {i.status for i in customers} == {"waiting"}
        per_customer: dict[str, int] = {}
        for t in s.state.transfers:
            per_customer[t.external_userid] = per_customer.get(t.external_userid, 0) + 1
        assert len(per_customer) == N + 3 and set(per_customer.values()) == {1}
        assert len(s.cards("gaofei")) == 1
        await s.run_until(s.clock.now() + timedelta(hours=25))
        assert {i.status for i in await items(s)} == {"done"}
        assert sum(1 for (u, _) in s.state.follows if u == "gaofei") >= N + 3
