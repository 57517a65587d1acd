"""The handlers on the running service (both databases): a referrer's gift goes to the
referrer's own manager as a card, the friend's to the manager they added; points land in the
membership ledger; the same CRM event delivered again pays nothing more. A broken
sop/referral.yaml does not hold the friend's arrival up, and a conversion waits for the file to
be mended (its event retries) instead of being lost."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from handlers.contacts import handlers as contacts_handlers
from handlers.contacts.models import Customer, Follow
from handlers.crm.api import CrmKeyEvent
from handlers.membership.models import MembershipAccount
from handlers.referral import handlers as referral_handlers
from handlers.referral.codes import mint
from handlers.referral.models import Referral
from scrm.kernel.models import InboxEvent
from tests.handlers.sop.seeding import local, seed
from tests.support.stack import Stack, stack

START = local("2026-11-02", "10:00")
MANAGERS = (("zhangwei", "张伟", None), ("lina", "李娜", None))
YAML = """\
qualify: {on: crm.card.activated, within_days: 10}
rewards:
  referrer: {points: 50, gift: 电影票两张}
  friend: {points: 20, growth: 5, gift: 定制保温杯}
"""


@pytest.fixture
async def bank(db_url: str, tmp_path: Path) -> AsyncIterator[tuple[Stack, str]]:
    async with stack(db_url, tmp_path, start=START, demo=False,
                     routers=[contacts_handlers.router, referral_handlers.router]) as b:
        await seed(b, managers=MANAGERS, customers=[])
        async with b.runtime.sessions() as s, s.begin():
            b.state.add_customer("wmAmy", external_userid="wmAmy")
            b.state.add_follow("lina", "wmAmy", (START - timedelta(days=90)).timestamp())
            s.add(Customer(external_userid="wmAmy", name="王艾米", updated_at=START))
            s.add(Follow(userid="lina", external_userid="wmAmy", created_at=START - timedelta(days=90)))
        state = (await mint(b.runtime.sessions, b.wecom, "wmAmy", b.clock.now())).state
        yield b, state


async def crm_event(b: Stack, event_id: str, friend: str, *, dedup: str) -> None:
    event = CrmKeyEvent(at=b.clock.now(), event_id=event_id, crm_id=f"crm-{friend}", event_kind="card.activated",
                        occurred_at=b.clock.now() - timedelta(minutes=1), external_userid=friend)
    async with b.runtime.sessions() as s, s.begin():
        await b.runtime.inbox.add_internal(s, event, dedup)


async def accounts(b: Stack) -> dict[str, tuple[int, int]]:
    async with b.runtime.sessions() as s:
        return {a.external_userid: (a.points, a.growth) for a in (await s.scalars(select(MembershipAccount))).all()}


async def test_both_sides_are_rewarded_once(bank: tuple[Stack, str]) -> None:
    b, state = bank
    (b.settings.playbook.sop_dir / "referral.yaml").write_text(YAML, encoding="utf-8")
    await b.driver.add_external_contact("zhangwei", "wmBen", name="李本", state=state)
    await b.step()
    b.clock.advance(3 * 86400)
    await crm_event(b, "ev1", "wmBen", dedup="event:ev1")
    await crm_event(b, "ev1", "wmBen", dedup="event:ev1:again")  # the CRM sends it twice
    await b.step()
    assert await accounts(b) == {"wmAmy": (50, 0), "wmBen": (20, 5)}
    amy, ben = b.cards("lina"), b.cards("zhangwei")
    assert [c.card["main_title"]["title"] for c in amy] == ["老带新：推荐人礼品"]
    assert "请将推荐礼品「电影票两张」交给 王艾米" in str(amy[0].card["sub_title_text"])
    assert [c.card["main_title"]["title"] for c in ben] == ["老带新：新客礼品"]
    assert "李本（由 王艾米 推荐）已完成转化，请将新客礼品「定制保温杯」交给 李本" in str(ben[0].card["sub_title_text"])


async def test_a_broken_file_holds_the_reward_not_the_arrival(bank: tuple[Stack, str]) -> None:
    b, state = bank
    path = b.settings.playbook.sop_dir / "referral.yaml"
    path.write_text("qualify: {on: crm.card.activated, within_days: 10}\nrewards: oops\n", encoding="utf-8")
    await b.driver.add_external_contact("zhangwei", "wmBen", name="李本", state=state)
    await b.step()
    async with b.runtime.sessions() as s:
        assert (await s.scalars(select(Referral.referrer))).all() == ["wmAmy"]
    b.clock.advance(3600)
    await crm_event(b, "ev1", "wmBen", dedup="event:ev1")
    await b.step()
    async with b.runtime.sessions() as s:
        waiting = (await s.scalars(select(InboxEvent).where(InboxEvent.status != "done"))).all()
    assert [(w.status, w.attempts) for w in waiting] == [("pending", 1)]
    assert "referral.yaml:2: rewards: must be a mapping" in str(waiting[0].last_error)
    assert await accounts(b) == {}
    path.write_text(YAML, encoding="utf-8")
    await b.runtime.inbox.replay([waiting[0].id], dead_only=False)
    await b.step()
    assert await accounts(b) == {"wmAmy": (50, 0), "wmBen": (20, 5)}


async def test_a_conversion_in_the_quiet_hours_cards_the_manager_when_they_end(bank: tuple[Stack, str]) -> None:
    b, state = bank
    (b.settings.playbook.sop_dir / "referral.yaml").write_text(YAML, encoding="utf-8")
    await b.driver.add_external_contact("zhangwei", "wmBen", name="李本", state=state)
    await b.step()
    b.clock.set(local("2026-11-03", "23:30"))  # the CRM's nightly batch; quiet hours 21:00-08:30
    await crm_event(b, "ev1", "wmBen", dedup="event:ev1")
    await b.step()
    assert await accounts(b) == {"wmAmy": (50, 0), "wmBen": (20, 5)}
    assert sorted(t.key for t in await b.tasks()) == ["referral:wmBen:friend", "referral:wmBen:referrer"]
    assert b.cards("lina") == [] and b.cards("zhangwei") == []
    b.clock.set(local("2026-11-04", "08:29"))
    await b.step()
    assert b.cards("lina") == [] and b.cards("zhangwei") == []
    b.clock.set(local("2026-11-04", "08:31"))
    await b.step()
    assert len(b.cards("lina")) == 1 and len(b.cards("zhangwei")) == 1
