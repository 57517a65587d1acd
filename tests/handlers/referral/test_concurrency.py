"""Two friends of one referrer converting at the same moment, in two transactions on PostgreSQL
(where the service's workers run events side by side): the referrer's code row is locked first,
so the second sees the first's reward and a cap of one pays the referrer once."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, text

from handlers.contacts.models import Customer
from handlers.crm.api import EVENT_KINDS
from handlers.membership.models import MembershipAccount
from handlers.referral.codes import ensure_code
from handlers.referral.models import PENDING, Referral
from handlers.referral.rewards import Conversion, Sinks, convert
from handlers.referral.rules import load_referral
from tests.handlers.sop.seeding import local
from tests.support.stack import stack

START = local("2026-11-02", "10:00")
YAML = """\
qualify: {on: crm.card.activated, within_days: 30}
rewards:
  referrer: {points: 300}
  friend: {points: 100}
caps: {referrer_per_month: 1}
"""


async def test_the_cap_holds_when_friends_convert_at_once(db_url: str, tmp_path: Path) -> None:
    if not db_url.startswith("postgresql"):
        pytest.skip("SQLite has one writer: transactions cannot overlap")
    async with stack(db_url, tmp_path, start=START, demo=False, routers=[]) as b:
        sop = b.settings.playbook.sop_dir
        (sop / "referral.yaml").write_text(YAML, encoding="utf-8")
        rules = load_referral(sop, EVENT_KINDS)
        pb = b.runtime.playbook.current
        assert pb is not None
        sinks = Sinks(sop, None, b.runtime.outbox, b.settings.wecom.agent_id, pb)
        async with b.runtime.sessions() as s, s.begin():
            s.add(Customer(external_userid="wmAmy", name="Amy", updated_at=START))
            code = (await ensure_code(s, "wmAmy", START)).code
            for friend in ("wmF1", "wmF2"):
                s.add(Customer(external_userid=friend, name=friend, updated_at=START))
                s.add(Referral(friend=friend, referrer="wmAmy", code=code, userid="zhangwei", arrived_at=START,
                               status=PENDING, status_at=START))
        at = START + timedelta(days=2)

        def event(friend: str) -> Conversion:
            return Conversion(friend, f"ev-{friend}", "card.activated", f"crm-{friend}", at)

        async def second() -> str | None:
            async with b.runtime.sessions() as s, s.begin():
                return await convert(s, rules, sinks, event("wmF2"), now=at)

        async with b.runtime.sessions() as first, first.begin():
            assert await convert(first, rules, sinks, event("wmF1"), now=at) == "rewarded"
            other = asyncio.create_task(second())
            # Commit only once the other transaction waits for a lock this one holds.
            async with b.runtime.sessions() as probe:
                for _ in range(10_000):
                    if await probe.scalar(text("SELECT count(*) FROM pg_locks WHERE NOT granted")):
                        break
                    await probe.rollback()
                else:
                    raise AssertionError("the second conversion never waited for the first")
            assert not other.done()
        assert await other == "capped"
        async with b.runtime.sessions() as s:
            accounts = {a.external_userid: a.points for a in (await s.scalars(select(MembershipAccount))).all()}
        assert accounts == {"wmAmy": 300, "wmF1": 100, "wmF2": 100}
