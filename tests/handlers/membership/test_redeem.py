"""Redemption through the bank's fulfilment system (the CRM webhook), reserve → confirm / cancel,
on both databases, against a fake fulfilment system that accepts, refuses, fails, drops the
answer after placing the order, or never answers. Every figure is the earned points (3 × 100 by
the shipped wealth purchase) minus what the test redeems, worked out here."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from handlers.crm.api import EVENT_KINDS
from handlers.membership import handlers as membership_handlers
from handlers.membership.cli import cmd_membership
from handlers.membership.ledger import Earning, post
from handlers.membership.models import MembershipAccount, MembershipEntry, MembershipRedemption
from handlers.membership.redeem import RedemptionRefused, Reservation, request_redemption, settle, sweep
from handlers.membership.report import audit
from handlers.membership.rules import load_membership
from scrm.kernel.models import OutboxAction
from tests.handlers.membership.fulfilment import HOOK_SECRET, Fulfilment, fulfilment_server
from tests.handlers.sop.seeding import SH, local, seed
from tests.support.stack import Stack, stack

REPO = Path(__file__).resolve().parents[3]
START = local("2026-11-02", "10:00")
ALICE, BOB = "wmAlice", "wmBob"
EARNED = 3 * 100  # three wealth purchases on three days (daily cap 1), 100 points each
TIMEOUT_S = 3600


@dataclass
class Bank:
    b: Stack
    crm: Fulfilment

    async def redeem(self, request_id: str, points: int, ext: str = ALICE, item: str = "电影票") -> Reservation:
        rules = load_membership(self.b.settings.playbook.sop_dir, EVENT_KINDS)
        async with self.b.runtime.sessions() as s, s.begin():
            return await request_redemption(s, self.b.runtime.outbox, rules, request_id=request_id,
                                            external_userid=ext, item=item, points=points, now=self.b.clock.now(),
                                            tz=SH, timeout_s=TIMEOUT_S)

    async def account(self, ext: str = ALICE) -> tuple[int, int]:
        async with self.b.runtime.sessions() as s:
            a = await s.get(MembershipAccount, ext, populate_existing=True)
            assert a is not None
            return a.points, a.reserved

    async def state(self, request_id: str) -> str:
        async with self.b.runtime.sessions() as s:
            return str(await s.scalar(select(MembershipRedemption.state).where(MembershipRedemption.id == request_id)))

    async def audited(self) -> None:
        async with self.b.runtime.sessions() as s:
            assert await audit(s) == ([], [])


@pytest.fixture
async def bank(db_url: str, tmp_path: Path) -> AsyncIterator[Bank]:
    crm = Fulfilment()
    async with fulfilment_server(crm) as url:
        sections = {"crm": {"webhook_url": url, "webhook_secret": HOOK_SECRET},
                    "membership": {"redeem_timeout_s": TIMEOUT_S}}
        async with stack(db_url, tmp_path, start=START, demo=False, routers=[membership_handlers.router],
                         sections=sections) as b:
            (b.settings.playbook.sop_dir / "membership.yaml").write_text(
                (REPO / "sop" / "membership.yaml").read_text(encoding="utf-8"), encoding="utf-8")
            await seed(b, customers=[ALICE, BOB], added=START - timedelta(days=30))
            rules = load_membership(b.settings.playbook.sop_dir, EVENT_KINDS)
            async with b.runtime.sessions() as s, s.begin():
                await post(s, rules, [Earning(ALICE, "wealth_purchase", f"crm:e{n}", START - timedelta(days=n))
                                      for n in range(1, 4)], tz=SH, now=START, inbox=None)
            yield Bank(b, crm)


async def test_accepted_redemption_spends_the_points_once(bank: Bank) -> None:
    r = await bank.redeem("r1", 120)
    assert (r.state, r.balance, r.reserved) == ("reserved", EARNED - 120, 120)
    assert await bank.account() == (EARNED - 120, 120)
    await bank.b.send()
    assert await bank.state("r1") == "confirmed"
    assert await bank.account() == (EARNED - 120, 0)
    order = bank.crm.orders["membership.redeem:r1"]
    assert (order["type"], order["crm_id"], order["item"], order["points"]) == (
        "redemption.reserve", f"crm-{ALICE}", "电影票", 120)
    # The same request again (a double click) reserves nothing more; a settlement replayed
    # (a second answer) changes nothing.
    again = await bank.redeem("r1", 120)
    assert again.repeat and again.state == "confirmed"
    async with bank.b.runtime.sessions() as s, s.begin():
        assert not await settle(s, "r1", confirmed=False, at=bank.b.clock.now())
    await bank.b.send()
    assert len(bank.crm.orders) == 1 and await bank.account() == (EARNED - 120, 0)
    await bank.audited()


async def test_refused_redemption_gives_the_points_back(bank: Bank) -> None:
    bank.crm.plan["r2"] = ["refuse"]
    await bank.redeem("r2", 200)
    await bank.b.send()
    assert await bank.state("r2") == "cancelled"
    assert await bank.account() == (EARNED, 0)
    assert [c["redemption_id"] for c in bank.crm.cancels] == ["r2"]
    async with bank.b.runtime.sessions() as s:
        reasons = sorted((e.kind, e.reason, e.amount) for e in (await s.scalars(
            select(MembershipEntry).where(MembershipEntry.source.like("redeem:r2%")))).all())
    assert reasons == [("points", "release", 200), ("points", "reserve", -200),
                       ("reserved", "cancel", -200), ("reserved", "reserve", 200)]
    await bank.audited()


async def test_a_failing_or_lost_answer_is_retried_with_the_same_key_and_spends_once(bank: Bank) -> None:
    bank.crm.plan["r3"] = ["fail", "drop", "fail"]  # busy; order placed but the answer lost; busy
    await bank.redeem("r3", 50)
    for _ in range(4):
        await bank.b.send()
        bank.b.clock.advance(minutes=10)  # past the outbox's backoff
    assert await bank.state("r3") == "confirmed"
    assert bank.crm.requests == ["membership.redeem:r3"] * 4
    assert len(bank.crm.orders) == 1
    assert await bank.account() == (EARNED - 50, 0)
    await bank.audited()


async def test_a_reservation_never_answered_is_cancelled_at_the_deadline(bank: Bank) -> None:
    bank.crm.default = "fail"
    await bank.redeem("r4", 100)
    await bank.b.send()
    bank.b.clock.advance(seconds=TIMEOUT_S - 60)
    await bank.b.send()
    assert await bank.state("r4") == "reserved" and await bank.account() == (EARNED - 100, 100)
    bank.b.clock.advance(seconds=120)  # past the deadline
    await bank.b.send()
    assert await bank.state("r4") == "cancelled"
    assert await bank.account() == (EARNED, 0)
    bank.crm.default = "accept"
    for _ in range(3):  # the cancel notice goes out once the CRM is back
        bank.b.clock.advance(minutes=30)
        await bank.b.send()
    assert [c["redemption_id"] for c in bank.crm.cancels] == ["r4"]
    async with bank.b.runtime.sessions() as s:
        status = await s.scalar(select(OutboxAction.status)
                                .where(OutboxAction.idempotency_key == "membership.redeem:r4"))
    assert status == "failed"
    await bank.audited()


async def test_two_concurrent_redemptions_never_overspend(bank: Bank) -> None:
    # 300 points, two requests of 200 at once in two sessions: one is reserved, the other refused.
    results = await asyncio.gather(bank.redeem("c1", 200), bank.redeem("c2", 200), return_exceptions=True)
    refused = [r for r in results if isinstance(r, RedemptionRefused)]
    reserved = [r for r in results if isinstance(r, Reservation)]
    assert len(refused) == 1 and len(reserved) == 1, results
    assert "300 spendable point(s), 200 asked" in str(refused[0]) or "100 spendable point(s), 200 asked" in str(
        refused[0])
    assert await bank.account() == (EARNED - 200, 200)
    await bank.audited()


async def test_requests_that_cannot_be_reserved(bank: Bank) -> None:
    with pytest.raises(RedemptionRefused, match="has 300 spendable point"):
        await bank.redeem("x1", EARNED + 1)
    with pytest.raises(RedemptionRefused, match="is not a member"):
        await bank.redeem("x2", 1, ext=BOB)
    with pytest.raises(RedemptionRefused, match="points must be"):
        await bank.redeem("x3", 0)
    await bank.redeem("x4", 10)
    with pytest.raises(RedemptionRefused, match="already used for another redemption"):
        await bank.redeem("x4", 20)
    assert await bank.account() == (EARNED - 10, 10)


async def test_the_cli_reserves_and_refuses_in_one_line(bank: Bank, capsys: pytest.CaptureFixture[str]) -> None:
    def args(points: int, request_id: str) -> argparse.Namespace:
        return argparse.Namespace(membership_command="redeem", customer=ALICE, item="加油卡", points=points,
                                  request_id=request_id)

    assert await cmd_membership(args(70, "cli1"), bank.b.settings, clock=bank.b.clock) == 0
    assert capsys.readouterr().out.strip() == (
        f"redemption cli1: 70 point(s) of {ALICE} for 加油卡: reserved; spendable {EARNED - 70}, reserved 70")
    assert await cmd_membership(args(EARNED, "cli2"), bank.b.settings, clock=bank.b.clock) == 2
    assert capsys.readouterr().err.strip() == (
        f"scrm: redemption refused: {ALICE} has {EARNED - 70} spendable point(s), {EARNED} asked")
    await bank.b.send()  # the service sends what the CLI queued
    assert await bank.state("cli1") == "confirmed" and await bank.account() == (EARNED - 70, 0)


async def test_a_reservation_whose_call_an_operator_cancelled_is_swept_at_night(bank: Bank) -> None:
    bank.crm.default = "fail"
    await bank.redeem("r5", 40)
    await bank.redeem("r6", 30)
    await bank.b.send()
    async with bank.b.runtime.sessions() as s, s.begin():  # `scrm outbox cancel` of r5's call
        await s.execute(update(OutboxAction).where(OutboxAction.idempotency_key == "membership.redeem:r5")
                        .values(status="cancelled"))
    async with bank.b.runtime.sessions() as s, s.begin():
        assert await sweep(s, bank.b.runtime.outbox, bank.b.clock.now()) == 0  # not past its deadline yet
    bank.b.clock.advance(seconds=TIMEOUT_S + 1)
    async with bank.b.runtime.sessions() as s, s.begin():
        # r6's call is still the outbox's (its deadline fails it, and the hook cancels): left alone.
        assert await sweep(s, bank.b.runtime.outbox, bank.b.clock.now()) == 1
        assert await sweep(s, bank.b.runtime.outbox, bank.b.clock.now()) == 0
    assert (await bank.state("r5"), await bank.state("r6")) == ("cancelled", "reserved")
    assert await bank.account() == (EARNED - 30, 30)
    bank.crm.default = "accept"
    await bank.b.send()
    assert (await bank.state("r6")) == "cancelled"  # past its deadline when next claimed
    assert sorted(c["redemption_id"] for c in bank.crm.cancels) == ["r5", "r6"]
    assert await bank.account() == (EARNED, 0)
    await bank.audited()


async def test_the_nightly_run_sweeps_stale_reservations(bank: Bank) -> None:
    await bank.redeem("r7", 25)
    async with bank.b.runtime.sessions() as s, s.begin():  # cancelled by an operator before it went out
        await s.execute(update(OutboxAction).where(OutboxAction.idempotency_key == "membership.redeem:r7")
                        .values(status="cancelled"))
    await bank.b.run_until(local("2026-11-03", "04:05"))  # the nightly run, past r7's deadline
    assert await bank.state("r7") == "cancelled" and await bank.account() == (EARNED, 0)
    assert [c["redemption_id"] for c in bank.crm.cancels] == ["r7"]
    await bank.audited()
