"""Who a campaign is for: each criterion on its own, unknown data never admitted, and the facts
(member level, the manager's department) read from the database."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from sqlalchemy import insert

from handlers.campaigns.audience import Facts, admits, load_facts
from handlers.campaigns.campaign import Audience
from handlers.contacts.models import Member
from handlers.membership.models import MembershipAccount
from scrm.adapters.db.engine import make_engine, make_sessionmaker
from scrm.playbook.expr import parse_condition
from scrm.playbook.flows import TagFilter

T = datetime(2026, 6, 1, tzinfo=UTC)
FACTS = Facts(levels={"c1": "gold", "c2": "silver"},
              departments={"m1": "杭州分行/城西支行/代发服务团队", "m2": "杭州分行/城东支行", "m3": "宁波分行"})


def ok(audience: Audience, customer: str = "c1", manager: str = "m1", tags: set[str] | None = None,
       attributes: dict[str, object] | None = None, facts: Facts | None = FACTS) -> bool:
    return admits(audience, customer=customer, manager=manager, tags=tags or set(),
                  attributes=attributes or {}, facts=facts)


def test_every_criterion_must_hold() -> None:
    anyone = Audience(TagFilter())
    assert ok(anyone) and ok(anyone, facts=None)
    card = Audience(TagFilter(all=["产品持有/信用卡"], none=["偏好/免打扰"]))
    assert ok(card, tags={"产品持有/信用卡"})
    assert not ok(card, tags={"产品持有/信用卡", "偏好/免打扰"}) and not ok(card)
    stage = Audience(TagFilter(), stages=("active",))
    assert ok(stage, attributes={"stage": "active"})
    assert not ok(stage, attributes={"stage": "churned"}) and not ok(stage)
    seg = Audience(TagFilter(), segments=("payroll", "elderly"))
    assert ok(seg, attributes={"seg_segments": ["new", "payroll"]}) and ok(seg, attributes={"seg_segments": "elderly"})
    assert not ok(seg, attributes={"seg_segments": ["new"]}) and not ok(seg)
    level = Audience(TagFilter(), member_levels=("gold",))
    assert ok(level, customer="c1") and not ok(level, customer="c2") and not ok(level, customer="c3")
    assert not ok(level, facts=None)
    branch = Audience(TagFilter(), branches=("杭州分行/城西支行",))
    assert ok(branch, manager="m1")  # a team below the branch
    assert not ok(branch, manager="m2") and not ok(branch, manager="m9")
    assert ok(Audience(TagFilter(), branches=("杭州分行",)), manager="m2")
    assert not ok(Audience(TagFilter(), branches=("杭州",)), manager="m2")  # whole path levels only
    rich = Audience(TagFilter(), condition=parse_condition("crm.card_spend_month < 3000"))
    assert ok(rich, attributes={"card_spend_month": 1200})
    assert not ok(rich, attributes={"card_spend_month": 5000}) and not ok(rich)  # unknown: not admitted


@pytest.mark.parametrize("n", [3, 2500])  # one chunk, and several
async def test_facts_are_read_from_membership_and_the_staff_directory(db_url: str, n: int) -> None:
    engine = make_engine(db_url)
    try:
        async with make_sessionmaker(engine)() as session, session.begin():
            await session.execute(insert(MembershipAccount), [
                {"external_userid": f"c{i}", "points": 0, "growth": 0, "level": "gold" if i % 2 else "silver",
                 "level_since": date(2026, 1, 1), "updated_at": T} for i in range(n)])
            await session.execute(insert(Member), [{"userid": "m1", "name": "甲", "department": "杭州分行/城西支行"},
                                                   {"userid": "m2", "name": "乙", "department": ""}])
        async with make_sessionmaker(engine)() as session:
            facts = await load_facts(session, [f"c{i}" for i in range(n)] + ["nobody"], {"m1", "m2", "m9"})
    finally:
        await engine.dispose()
    assert facts.levels == {f"c{i}": "gold" if i % 2 else "silver" for i in range(n)}
    assert facts.departments == {"m1": "杭州分行/城西支行", "m2": ""}
