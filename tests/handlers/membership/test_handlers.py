"""What the service already sees earns through the shipped sop/membership.yaml, end to end on
the running service (both databases): a CRM purchase event, a customer opening a material, a
customer joining a customer group; the upgrade's card reaches the manager with the level's
rights; the nightly job is registered; ``scrm membership report`` prints the figures; a broken
file drops earnings without holding up the event.

Figures come from the shipped file's numbers, written out here."""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from handlers.crm.api import EVENT_KINDS, CrmKeyEvent
from handlers.membership import handlers as membership_handlers
from handlers.membership.cli import cmd_membership
from handlers.membership.jobs import JOB_KEY
from handlers.membership.models import MembershipAccount, MembershipEntry
from handlers.membership.nightly import run_chunk
from handlers.membership.rules import load_membership
from handlers.radar.api import RadarClickEvent
from scrm.kernel.models import DueJob, InboxEvent
from tests.handlers.sop.seeding import SH, local, seed
from tests.support.stack import Stack, stack

REPO = Path(__file__).resolve().parents[3]
START = local("2026-11-02", "10:00")
ALICE, BOB = "wmAlice", "wmBob"
MANAGER = "zhangwei"


async def crm_event(b: Stack, ext: str, event_id: str, kind: str, *, dedup: str | None = None) -> None:
    event = CrmKeyEvent(at=b.clock.now(), event_id=event_id, crm_id=f"crm-{ext}", event_kind=kind,
                        occurred_at=b.clock.now() - timedelta(minutes=5), external_userid=None)
    async with b.runtime.sessions() as s, s.begin():
        await b.runtime.inbox.add_internal(s, event, dedup or f"event:{event_id}")


async def opened(b: Stack, ext: str, material: str, n: int) -> None:
    event = RadarClickEvent(at=b.clock.now(), material=material, customer=ext, token_id=f"t{n}")
    async with b.runtime.sessions() as s, s.begin():
        await b.runtime.inbox.add_internal(s, event, f"click:{ext}:{n}")


async def balances(b: Stack) -> dict[str, tuple[int, int, str]]:
    async with b.runtime.sessions() as s:
        return {a.external_userid: (a.points, a.growth, a.level)
                for a in (await s.scalars(select(MembershipAccount))).all()}


@pytest.fixture
async def running(db_url: str, tmp_path: Path) -> AsyncIterator[Stack]:
    async with stack(db_url, tmp_path, start=START, demo=False, routers=[membership_handlers.router]) as b:
        (b.settings.playbook.sop_dir / "membership.yaml").write_text(
            (REPO / "sop" / "membership.yaml").read_text(encoding="utf-8"), encoding="utf-8")
        await seed(b, customers=[ALICE, BOB], manager=MANAGER, added=START - timedelta(days=30))
        await b.step()
        yield b


async def test_behaviours_earn_once_and_an_upgrade_cards_the_manager(running: Stack,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    b = running
    async with b.runtime.sessions() as s:
        assert await s.scalar(select(DueJob.job_key).where(DueJob.job_key == JOB_KEY)) == JOB_KEY
    # Alice buys a wealth product (100 points, 200 growth: past 普通会员's 100), the CRM
    # delivers the event twice (a replay under another key), and buys again the same day
    # (daily cap 1). She opens one material twice and another once (2 points, 5 growth each, once
    # per material).
    await crm_event(b, ALICE, "ev1", "purchase.wealth")
    await crm_event(b, ALICE, "ev1", "purchase.wealth", dedup="event:ev1:again")
    await crm_event(b, ALICE, "ev2", "purchase.wealth")
    await crm_event(b, BOB, "ev3", "maturity")  # no behaviour is on it
    await opened(b, ALICE, "rates", 1)
    await opened(b, ALICE, "rates", 2)
    await opened(b, ALICE, "fund-intro", 3)
    # Bob joins a customer group (10 points, 20 growth), twice (left and came back): once.
    chat = b.state.create_group(MANAGER, "理财沙龙群", b.clock.now().timestamp(), chat_id="chat-salon")
    await b.driver.join_group(chat.chat_id, [BOB])
    await b.driver.leave_group(chat.chat_id, [BOB])
    await b.driver.join_group(chat.chat_id, [BOB])
    await b.step()
    assert await balances(b) == {ALICE: (100 + 2 * 2, 200 + 2 * 5, "ordinary"), BOB: (10, 20, "new")}
    async with b.runtime.sessions() as s:
        sources = sorted({e.source for e in (await s.scalars(select(MembershipEntry))).all()})
        failed = (await s.scalars(select(InboxEvent).where(InboxEvent.status != "done"))).all()
    assert sources == ["crm:ev1", "group.join:chat-salon", "radar.open:fund-intro", "radar.open:rates"]
    assert failed == []
    cards = b.cards(MANAGER)
    assert len(cards) == 1
    text = str(cards[0].card.get("sub_title_text", ""))
    assert cards[0].card["main_title"]["title"] == "客户升级：普通会员"
    assert "由「新会员」升至「普通会员」" in text and "通用权益：积分兑换、生日祝福、理财小知识月刊" in text
    # The report: two members, one per level, the points outstanding.
    assert await cmd_membership(argparse.Namespace(membership_command="report", top=5, months=3), b.settings,
                                clock=b.clock) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"会员 2 人；积分余额（负债）{104 + 10}；兑换冻结 0；成长值合计 {210 + 20}"
    # The pyramid, highest level first; Alice's one upgrade this month.
    assert out[1:6] == ["会员金字塔（由高到低）：", "  种子会员 (seed): 0 (0.0%)", "  核心会员 (core): 0 (0.0%)",
                        "  普通会员 (ordinary): 1 (50.0%)", "  新会员 (new): 1 (50.0%)"]
    assert out[6:8] == ["等级流动：", "  2026-11: 升级 1，降级 0（新会员→普通会员 1）"]
    assert out[-1] == "账本核对：每个余额都等于其流水合计，无负余额"
    # The shipped rules a year on: points earned in 2026 lapse at the end of 2027; the review of
    # 2028-01-01 (missed: the service was down that night, done the next) finds no growth in the
    # 365 days before it, below 普通会员's keep of 50: one level down.
    rules = load_membership(b.settings.playbook.sop_dir, EVENT_KINDS)
    for run in range(2):  # the second run finds everything done
        async with b.runtime.sessions() as s, s.begin():
            chunk = await run_chunk(s, b.runtime.inbox, rules, day=date(2028, 1, 2),
                                    now=local("2028-01-02", "04:00"), tz=SH)
        assert (chunk.lapsed, [(c.external_userid, c.level) for c in chunk.changes]) == (
            (104 + 10, [(ALICE, "new")]) if run == 0 else (0, []))
    assert await balances(b) == {ALICE: (0, 210, "new"), BOB: (0, 20, "new")}


async def test_a_broken_file_drops_the_earning_not_the_event(running: Stack) -> None:
    b = running
    (b.settings.playbook.sop_dir / "membership.yaml").write_text("behaviours: [oops]\nlevels: {}\n", encoding="utf-8")
    await crm_event(b, ALICE, "ev9", "purchase.wealth")
    await b.step()
    assert await balances(b) == {}
    async with b.runtime.sessions() as s:
        statuses = (await s.scalars(select(InboxEvent.status).where(InboxEvent.dedup_key == "crm:event:ev9"))).all()
    assert statuses == ["done"]
