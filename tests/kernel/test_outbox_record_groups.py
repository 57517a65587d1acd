"""Recording outcomes in groups: calls that return one by one while others are in flight share
one commit (at WeCom's pace they never return together), and the last call in flight does not
wait for the linger."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

from sqlalchemy import event, select

from scrm.kernel.clock import FakeClock
from scrm.kernel.models import OutboxAction
from scrm.kernel.service import Runtime
from tests.conftest import make_settings
from tests.support.service import running_service

# Long enough that a group which waited for it would hang the test (its guard then fails it).
FOREVER_S = 3600.0
GUARD_S = 30.0


class HeldWeCom:
    """Answers each message/send only when the test releases it, in the order the test chooses."""

    def __init__(self, expected_calls: int) -> None:
        self.released: dict[str, asyncio.Event] = {}
        self.called: list[str] = []
        self.all_called = asyncio.Event()
        self.expected_calls = expected_calls

    def gate(self, touser: str) -> asyncio.Event:
        return self.released.setdefault(touser, asyncio.Event())

    async def call(self, api: str, body: dict[str, Any] | None = None, *, method: str = "POST",
                   params: dict[str, Any] | None = None) -> dict[str, Any]:
        touser = str((body or {})["touser"])
        self.called.append(touser)
        if len(self.called) == self.expected_calls:
            self.all_called.set()
        await self.gate(touser).wait()
        return {"errcode": 0, "errmsg": "ok", "msgid": f"msg-{touser}"}


async def queue(runtime: Runtime, members: list[str]) -> None:
    async with runtime.sessions() as s, s.begin():
        for m in members:
            await runtime.outbox.add(s, f"notice:{m}", "message/send",
                                     {"touser": m, "msgtype": "text", "agentid": 1, "text": {"content": "早安"}})


async def sent_ids(runtime: Runtime) -> dict[str, str | None]:
    async with runtime.sessions() as s:
        rows = (await s.execute(select(OutboxAction.idempotency_key, OutboxAction.status,
                                       OutboxAction.wecom_msgid))).all()
    return {key: msgid for key, status, msgid in rows if status == "sent"}


async def test_outcomes_returning_one_by_one_share_one_commit(db_url: str) -> None:
    wecom = HeldWeCom(3)
    settings = make_settings(db_url, outbox={"record_linger_s": FOREVER_S})
    async with running_service(settings, clock=FakeClock(), wecom=wecom) as (runtime, _):
        await queue(runtime, ["m1", "m2", "m3"])
        commits: Counter[str] = Counter()
        event.listen(runtime.engine.sync_engine, "commit", lambda conn: commits.update(["commit"]))
        async with asyncio.timeout(GUARD_S):
            sending = asyncio.create_task(runtime.outbox.process_due())
            await wecom.all_called.wait()
            for member in ["m2", "m3", "m1"]:  # one at a time, a few loop turns apart
                wecom.gate(member).set()
                for _ in range(5):
                    await asyncio.sleep(0)
            assert await sending == 3
        # The claim (with its mark) and then one group: without the linger, three commits.
        assert commits["commit"] == 2
        assert await sent_ids(runtime) == {"notice:m1": "msg-m1", "notice:m2": "msg-m2", "notice:m3": "msg-m3"}


async def test_a_lone_call_is_recorded_without_lingering(db_url: str) -> None:
    wecom = HeldWeCom(1)
    wecom.gate("m1").set()
    settings = make_settings(db_url, outbox={"record_linger_s": FOREVER_S})
    async with running_service(settings, clock=FakeClock(), wecom=wecom) as (runtime, _):
        await queue(runtime, ["m1"])
        async with asyncio.timeout(GUARD_S):
            assert await runtime.outbox.process_due() == 1
        assert await sent_ids(runtime) == {"notice:m1": "msg-m1"}
