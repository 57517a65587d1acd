"""A bank of 20,000 customers for the campaign simulation, seeded with bulk inserts, and the
rules that shape it — written as plain predicates on the customer's number so that the test can
work out every expected figure from them without asking the code under test."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.contacts.models import Customer, Follow, Member
from handlers.crm.models import Binding, CrmCustomer, CrmEvent
from handlers.radar.models import RadarClick
from handlers.sop.models import SopSend
from handlers.tags.models import FollowTag, Tag, TagGroup
from tests.support.playbooks import APPROVED, SOP_MATERIALS

SH = ZoneInfo("Asia/Shanghai")
N = 20_000
#: The campaign's one send: 2026-12-15 10:30 in Shanghai (a Tuesday).
SEND_AT = datetime(2026, 12, 15, 10, 30, tzinfo=SH)
T0 = datetime(2026, 6, 1, tzinfo=UTC)
MANAGERS = {  # userid → department path (分行/支行/团队)
    "m0": "杭州分行/城西支行/代发服务团队", "m1": "杭州分行/城西支行/代发服务团队",
    "m2": "杭州分行/城西支行/财富管理团队", "m3": "杭州分行/城东支行/零售客户团队",
    "m4": "杭州分行/城东支行/零售客户团队", "m5": "杭州分行/城东支行/贵宾团队",
    "m6": "宁波分行/海曙支行/零售团队", "m7": "宁波分行/海曙支行/零售团队",
}
CARD, OPT_OUT = "产品持有/信用卡", "偏好/免打扰"
TAG_IDS = {CARD: "t-card", OPT_OUT: "t-optout"}


CAMPAIGN = """\
campaign: card-sim
name: 信用卡消费季（模拟）
window: {start: 2026-12-14, end: 2026-12-31}
audience:
  tags: {all: [产品持有/信用卡]}
  stages: [active]
  branches: [杭州分行]
channels:
  - {id: push, kind: private, on: 2026-12-15, at: "10:30", material: sim-a}
variants:
  a: {weight: 2}
  b: {weight: 1, material: sim-b}
  c: {weight: 1, material: sim-c}
holdout: 10
experiment: card-sim-copy
planned_sample: 1000
goal: {event: card.activated, within_days: 14}
cost: {per_send: 0.05, per_conversion: 40, currency: CNY}
"""
TEXTS = {"a": "年末刷卡季：本月消费满额有礼，详情问我。", "b": "绑卡微信支付，首笔立减，详情问我。",
         "c": "账单分期手续费八折，详情问我。"}
MATERIALS = SOP_MATERIALS + "".join(f"""\
- id: sim-{arm}
  type: text
  channels: [private]
  text: {text}
  {APPROVED}
""" for arm, text in TEXTS.items())
EXPERIMENT = "card-sim-copy"
WEIGHTS = {"a": 2, "b": 1, "c": 1}


def arm_of(customer: str) -> str:
    """The documented rule: u = first 64 bits of SHA-256("card-sim-copy␟customer") / 2⁶⁴; the
    first 10 % is the holdout, the rest split 2:1:1 in file order."""
    u = int.from_bytes(hashlib.sha256(f"{EXPERIMENT}\x1f{customer}".encode()).digest()[:8], "big") / 2**64
    if u < 0.10:
        return "holdout"
    share = (u - 0.10) / 0.90 * 4
    return "a" if share < 2 else "b" if share < 3 else "c"


class Expected:
    """Every figure, from the seeding rules."""

    def __init__(self, n: int = N) -> None:
        self.audience = [i for i in range(n) if has_card(i) and stage_of(i) == "active"
                         and MANAGERS[manager_of(i)].startswith("杭州分行/")]
        self.skipped = {i for i in self.audience if opted_out(i) or sent_today_already(i)}
        self.arm = {i: arm_of(ext(i)) for i in self.audience if i not in self.skipped}
        self.reached = {i for i, a in self.arm.items() if a != "holdout"}
        self.held = {i for i, a in self.arm.items() if a == "holdout"}
        self.opened = {i for i in self.reached if opened(i)}
        window = timedelta(days=14)
        self.converted_any = {i for i in self.arm if any(
            k == "card.activated" and SEND_AT < at <= SEND_AT + window for k, at in events_of(i))}
        self.converted = self.converted_any & self.reached

    def money(self, customers: set[int]) -> tuple[str, str | None]:
        conv = len(customers & self.converted)
        total = Decimal("0.05") * len(customers & self.reached) + Decimal(40) * conv
        per = (total / conv).quantize(Decimal("0.01")) if conv else None
        return str(total.quantize(Decimal("0.01"))), None if per is None else str(per)

    def row(self, customers: set[int]) -> dict[str, Any]:
        cost, per = self.money(customers)
        return {"targeted": len(customers), "reached": len(customers & self.reached),
                "opened": len(customers & self.opened), "converted": len(customers & self.converted),
                "referred": 0, "sends": len(customers & self.reached), "cost": cost, "cost_per_conversion": per}


def ext(i: int) -> str:
    return f"wm{i:05d}"


def manager_of(i: int) -> str:
    return f"m{i % 8}"


def has_card(i: int) -> bool:
    return i % 5 != 0


def opted_out(i: int) -> bool:
    return i % 97 == 0


def stage_of(i: int) -> str:
    return "churned" if i % 11 == 0 else "active"


def sent_today_already(i: int) -> bool:
    """Another SOP already sent them something on the day: the per-day cap (1) refuses ours."""
    return i % 89 == 0


def opened(i: int) -> bool:
    return i % 3 == 0


def events_of(i: int) -> list[tuple[str, datetime]]:
    """The CRM events of customer ``i``: (kind, when)."""
    out: list[tuple[str, datetime]] = []
    if i % 7 == 0:
        out.append(("card.activated", SEND_AT + timedelta(days=3)))  # inside a 14-day window
    if i % 13 == 0:
        out.append(("card.activated", SEND_AT + timedelta(days=20)))  # too late
    if i % 17 == 0:
        out.append(("card.activated", SEND_AT - timedelta(days=2)))  # before the send
    if i % 19 == 0:
        out.append(("purchase.wealth", SEND_AT + timedelta(days=1)))  # another goal
    return out


async def seed(session: AsyncSession, n: int = N) -> None:
    """Managers, customers with follows, tags, CRM records and bindings, events, earlier sends."""
    await session.execute(insert(Member), [{"userid": u, "name": f"经理{u}", "department": d}
                                           for u, d in MANAGERS.items()])
    await session.execute(insert(TagGroup), [{"group_id": "g-product", "name": "产品持有", "owner": "crm"},
                                             {"group_id": "g-pref", "name": "偏好", "owner": "manager"}])
    await session.execute(insert(Tag), [{"tag_id": "t-card", "group_id": "g-product", "name": "信用卡"},
                                        {"tag_id": "t-optout", "group_id": "g-pref", "name": "免打扰"}])
    customers: list[dict[str, Any]] = []
    follows: list[dict[str, Any]] = []
    crm: list[dict[str, Any]] = []
    bindings: list[dict[str, Any]] = []
    tags: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    sends: list[dict[str, Any]] = []
    for i in range(n):
        e, m = ext(i), manager_of(i)
        customers.append({"external_userid": e, "name": f"客户{i}", "crm_id": None, "updated_at": T0})
        follows.append({"userid": m, "external_userid": e, "created_at": T0, "status": "active"})
        crm.append({"crm_id": f"crm{i}", "attributes": {"name": f"客户{i}", "stage": stage_of(i)}, "updated_at": T0})
        bindings.append({"crm_id": f"crm{i}", "external_userid": e, "source": "direct", "bound_at": T0})
        for tag, on in ((CARD, has_card(i)), (OPT_OUT, opted_out(i))):
            if on:
                tags.append({"userid": m, "external_userid": e, "tag_id": TAG_IDS[tag], "added_at": T0})
        for n, (kind, at) in enumerate(events_of(i)):
            events.append({"event_id": f"ev-{i}-{n}", "crm_id": f"crm{i}", "kind": kind, "at": at, "payload": {}})
        if sent_today_already(i):
            sends.append({"key": f"sop:path:other:x:{e}:2026-12-15", "target": e, "target_type": "customer",
                          "source": "path:other", "step": "x", "sender": m, "material": "t-text",
                          "day": SEND_AT.date(), "created_at": SEND_AT - timedelta(hours=1)})
    for model, rows in ((Customer, customers), (Follow, follows), (CrmCustomer, crm), (Binding, bindings),
                        (FollowTag, tags), (CrmEvent, events), (SopSend, sends)):
        for start in range(0, len(rows), 5000):
            await session.execute(insert(model), rows[start:start + 5000])


async def open_links(session: AsyncSession, exp: Expected) -> None:
    """The opens of the campaign's tracked links (the radar records the send's occurrence), and
    one open of another SOP's link by a campaign customer, which does not count."""
    await session.execute(insert(RadarClick), [
        {"token_id": f"tok{i}", "material_id": f"sim-{exp.arm[i]}", "sender": manager_of(i), "external_userid": ext(i),
         "at": SEND_AT + timedelta(hours=2), "occurrence": f"sop:campaign:card-sim:push@{ext(i)}:2026-12-15"}
        for i in sorted(exp.opened)])
    await session.execute(insert(RadarClick), [
        {"token_id": "other", "material_id": "t-text", "sender": "m1", "external_userid": ext(1), "at": SEND_AT,
         "occurrence": f"sop:path:other:x@{ext(1)}:2026-12-15"}])
