"""A tier change in the CRM's customer records is a key event: the push API or a file that moves
the tier attribute between two levels raises ``tier_up``/``tier_down`` once (the reminder card
reaches the manager), and a repeated push or import raises nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import select

from handlers.crm.importer import import_file
from handlers.crm.models import CrmEvent
from tests.handlers.crm.receiver import HOOK_SECRET, SECRET, CrmStack, Receiver
from tests.handlers.sop.seeding import ROUTERS, local, seed
from tests.support.playbooks import write_shipped_playbook
from tests.support.stack import stack

START = local("2026-11-02", "10:00")  # a Monday, outside quiet hours
EXT = "wmTiered"


def tier_cards(c: CrmStack) -> list[str]:
    return [t for t in (x.card["sub_title_text"] for x in c.s.cards("zhangwei")) if "已升级" in t or "降为" in t]


async def tier_events(c: CrmStack) -> list[tuple[str, str, dict[str, Any]]]:
    async with c.s.runtime.sessions() as session:
        rows = (await session.scalars(select(CrmEvent).order_by(CrmEvent.id))).all()
    return [(r.crm_id, r.kind, dict(r.payload)) for r in rows]


async def upsert(c: CrmStack, *customers: dict[str, Any]) -> int:
    status, body = await c.post("/crm/v1/customers:batchUpsert", {"customers": list(customers)})
    assert status == 200, body
    await c.s.step()
    return int(body["new_events"])


async def test_tier_attribute_moves_raise_the_tier_events_once(db_url: str, tmp_path: Path) -> None:
    async with stack(db_url, tmp_path, start=START, demo=False, routers=ROUTERS,
                     playbook=write_shipped_playbook(tmp_path), sections={"crm": {"hmac_secret": SECRET}}) as s:
        c = CrmStack(s, Receiver(HOOK_SECRET))
        await seed(s, customers=[EXT], crm={EXT: {"name": "李雷", "tier": "V2"}})
        crm_id = f"crm-{EXT}"
        assert await upsert(c, {"crm_id": crm_id, "attributes": {"tier": "V3"}}) == 1
        (card,) = tier_cards(c)
        assert card.startswith("李雷 已升级为V3，可介绍对应权益。")
        # The same push again (a retry, a replay) changes nothing and raises nothing.
        assert await upsert(c, {"crm_id": crm_id, "attributes": {"tier": "V3"}}) == 0
        # Other attributes, a tier outside the order, a tier removed: no tier event.
        assert await upsert(c, {"crm_id": crm_id, "attributes": {"aum": 50000}}) == 0
        assert await upsert(c, {"crm_id": crm_id, "attributes": {"tier": "Gold"}}) == 0
        assert await upsert(c, {"crm_id": crm_id, "attributes": {"tier": "V3"}}) == 0
        # A new customer's first tier is no move either.
        assert await upsert(c, {"crm_id": "crm-new", "attributes": {"tier": "V5"}}) == 0
        s.clock.advance(minutes=10)
        assert await upsert(c, {"crm_id": crm_id, "attributes": {"tier": "V1"}}) == 1
        cards = tier_cards(c)
        assert len(cards) == 2 and cards[1] == "李雷 降为V1，请了解资金变化原因。"
        # From a file: V1 → V4 once; importing the file again raises nothing.
        s.clock.advance(minutes=10)
        f = tmp_path / "tiers.csv"
        f.write_text(f"crm_id,tier\n{crm_id},V4\n", encoding="utf-8")
        for expected in (1, 0):
            report = await import_file(f, s.runtime.sessions, s.runtime.inbox, s.clock)
            assert report.errors == [] and report.new_events == expected
            await s.step()
        assert len(tier_cards(c)) == 3 and "已升级为V4" in tier_cards(c)[2]
        events = await tier_events(c)
        assert [(k, p["previous_tier"], p["tier"]) for _, k, p in events] == [
            ("tier_up", "V2", "V3"), ("tier_down", "V3", "V1"), ("tier_up", "V1", "V4")]
        assert {crm for crm, _, _ in events} == {crm_id}


async def test_tier_attribute_and_order_are_configurable(db_url: str, tmp_path: Path) -> None:
    crm = {"hmac_secret": SECRET, "tier_attribute": "level", "tier_order": ["silver", "gold", "diamond"]}
    async with stack(db_url, tmp_path, start=START, demo=False, routers=ROUTERS,
                     playbook=write_shipped_playbook(tmp_path), sections={"crm": crm}) as s:
        c = CrmStack(s, Receiver(HOOK_SECRET))
        await seed(s, customers=[EXT], crm={EXT: {"name": "李雷", "level": "gold", "tier": "V2"}})
        crm_id = f"crm-{EXT}"
        assert await upsert(c, {"crm_id": crm_id, "attributes": {"tier": "V5"}}) == 0  # not the tier here
        assert await upsert(c, {"crm_id": crm_id, "attributes": {"level": "silver"}}) == 1
        assert [(k, p["previous_level"], p["level"]) for _, k, p in await tier_events(c)] == [
            ("tier_down", "gold", "silver")]
        assert len(tier_cards(c)) == 1
