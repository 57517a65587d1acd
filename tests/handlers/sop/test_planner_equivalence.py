"""The fast planner decides exactly what the slow one did.

A seeded branch (a few thousand customers with messy CRM data, ~300 groups, prior sends, a
manager over the daily task limit) is planned over seven days — a payday, payday + 1, a Friday,
December's payday + 1 (the salary notice has expired), the day before 元旦, 元旦 itself and the
Monday that receives the steps moved off it. Every decision of every slot is applied as the
executor would (sop_send / sop_task rows, carried cards), so caps and limits build up across
slots and days.

Three runs must give the same multiset of decisions per day:

* the reference: :class:`SlotPlanner` slot by slot reading *every* customer (``scan_all``), the
  algorithm before the optimisation;
* :class:`SlotPlanner` as the scheduler runs it (customers narrowed in SQL);
* :class:`DayPlanner`, all slots of a day in one run (state carried in memory).

``data/planner_golden.json`` holds per-day digests of the decisions the planner made before the
optimisation (captured by running the pre-change code on this dataset and the shipped playbook),
so the reference itself is held to what the planner did then. When the playbook or the
decision rules change on purpose, refresh them (from the reference run) with
``PLANNER_GOLDEN=update .venv/bin/pytest tests/sop_engine/test_planner_equivalence.py -k sqlite``.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.contacts.models import Customer, Follow, Member
from handlers.crm.models import Binding, CrmCustomer
from handlers.groups.models import GroupChat, GroupMember
from handlers.sop.model import Decision, Planned, Skip, task_id_for
from handlers.sop.models import SopSend, SopTask
from handlers.sop.planner import DayPlanner, SlotPlanner, slot_times
from handlers.tags.models import FollowTag, Tag, TagGroup
from scrm.adapters.db.engine import make_engine, make_sessionmaker
from scrm.playbook import Playbook, load_playbook

SH = ZoneInfo("Asia/Shanghai")
DAYS = [date(2026, 11, 10), date(2026, 11, 11), date(2026, 11, 13), date(2026, 12, 11), date(2026, 12, 31),
        date(2027, 1, 1), date(2027, 1, 4)]
GOLDEN = Path(__file__).parent / "data" / "planner_golden.json"
N_CUSTOMERS = 2500
MANAGERS = [f"m{i:02d}" for i in range(8)]
BUSY = "mbusy"  # gets more new contacts on some days than manager_daily_tasks allows
TAGS = {
    "产品持有": ["代发", "按揭", "信用卡", "理财"],
    "风险评估": ["稳健型", "未评估", "已过期"],
    "偏好": ["免打扰"],
    "跟进": ["待回访", "已提醒还款", "已推理财"],
}
T0 = datetime(2026, 8, 1, tzinfo=UTC)


def tag_id(name: str) -> str:
    return "t-" + name.replace("/", "-")


def _anchor_value(rng: random.Random) -> Any:
    """A payday or repayment day as CRM files really carry them, oddities included."""
    roll = rng.random()
    day = rng.randint(1, 31)
    if roll < 0.70:
        return day
    if roll < 0.80:
        return str(day)
    return rng.choice([f"{day:02d}", f" {day}", float(day), "abc", "", None, 0, 32, True, "10", 10.5])


def _when(rng: random.Random) -> datetime:
    """A follow's creation: any time of day, so local midnight (16:00 UTC) is crossed often."""
    base = datetime(2026, 9, 1, tzinfo=UTC) + timedelta(days=rng.randint(0, 125))
    return base + timedelta(hours=rng.choice([0, 3, 8, 15, 15.99, 16, 16.01, 23]), minutes=rng.randint(0, 59))


def dataset() -> dict[str, list[dict[str, Any]]]:
    """Rows per table, the same on every run (a fixed seed)."""
    rng = random.Random(6)
    rows: dict[str, list[dict[str, Any]]] = {k: [] for k in (
        "member", "tag_group", "tag", "customer", "crm", "binding", "follow", "follow_tag", "group", "member_of",
        "sop_send", "sop_task")}
    for userid in [*MANAGERS, BUSY]:
        rows["member"].append({"userid": userid, "name": f"经理{userid}"})
    for group, names in TAGS.items():
        rows["tag_group"].append({"group_id": f"g-{group}", "name": group})
        for n in names:
            rows["tag"].append({"tag_id": tag_id(f"{group}/{n}"), "group_id": f"g-{group}", "name": n})
    # Two ids for one tag name (both count), and a deleted tag named like a live one (does not).
    rows["tag"].append({"tag_id": "t-dup-代发", "group_id": "g-产品持有", "name": "代发"})
    rows["tag"].append({"tag_id": "t-del-理财", "group_id": "g-产品持有", "name": "理财", "deleted": True})
    busy_days = [date(2026, 10, 12), date(2026, 12, 2), date(2026, 12, 5)]  # +30: 11-11, 01-01 → 01-04, 01-04
    for i in range(N_CUSTOMERS):
        ext = f"wm{i:05d}"
        attrs: dict[str, Any] = {}
        for key in ("payday", "repayment_day"):
            value = _anchor_value(rng)
            if value is not None:
                attrs[key] = value
        attrs["card_installments"] = rng.choice([0, 0, 1, 2, "x"])
        attrs["card_spend_month"] = rng.choice([0, 500, 2999, 3000, 5000.5])
        if rng.random() < 0.5:
            attrs["name"] = f"客户{i}"
        if rng.random() < 0.3:
            attrs["birthday"] = f"19{rng.randint(50, 99)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
        roll = rng.random()
        own: str | None = f"c{i:05d}"
        if roll < 0.70:
            rows["crm"].append({"crm_id": own, "attributes": attrs})
        elif roll < 0.80:  # only a binding knows the CRM record
            own = None
            rows["crm"].append({"crm_id": f"b{i:05d}", "attributes": attrs})
            rows["binding"].append({"crm_id": f"b{i:05d}", "external_userid": ext})
        elif roll < 0.85:  # the customer's own crm_id has no record; a binding's has (not used)
            own = "c-missing"
            rows["crm"].append({"crm_id": f"b{i:05d}", "attributes": attrs})
            rows["binding"].append({"crm_id": f"b{i:05d}", "external_userid": ext})
        elif roll < 0.90:  # empty crm_id: the binding's record counts
            own = ""
            rows["crm"].append({"crm_id": f"b{i:05d}", "attributes": attrs})
            rows["binding"].append({"crm_id": f"b{i:05d}", "external_userid": ext})
        elif roll < 0.95:  # own record wins over a binding's
            rows["crm"].append({"crm_id": own, "attributes": attrs})
            rows["crm"].append({"crm_id": f"b{i:05d}", "attributes": {"payday": 10, "repayment_day": 13}})
            rows["binding"].append({"crm_id": f"b{i:05d}", "external_userid": ext})
        else:
            own = None
        rows["customer"].append({"external_userid": ext, "name": f"微信{i}", "crm_id": own})
        primary = MANAGERS[i % len(MANAGERS)]
        created = _when(rng)
        if i % 25 == 7:
            primary, created = BUSY, datetime.combine(busy_days[i % 3], time(10), SH)
        roll = rng.random()
        follows = [(primary, created, "active")]
        if roll < 0.15:  # a second manager, later
            follows.append((MANAGERS[(i + 3) % len(MANAGERS)], created + timedelta(days=rng.randint(0, 40)), "active"))
        elif roll < 0.20:  # the first follow was lost: the newer one is the primary
            follows.append((MANAGERS[(i + 5) % len(MANAGERS)], created - timedelta(days=rng.randint(1, 40)), "lost"))
        elif roll < 0.23:  # no active follow at all: not a target
            follows = [(primary, created, "removed")]
        for userid, at, status in follows:
            rows["follow"].append({"userid": userid, "external_userid": ext, "created_at": at, "status": status,
                                   "remark": f"备注{i}" if rng.random() < 0.3 else "",
                                   "last_contact_at": at + timedelta(days=3)})
            for full in _tags(rng):
                tid = "t-dup-代发" if full == "产品持有/代发" and rng.random() < 0.2 else tag_id(full)
                if full == "产品持有/理财" and rng.random() < 0.2:
                    tid = "t-del-理财"
                rows["follow_tag"].append({"userid": userid, "external_userid": ext, "tag_id": tid, "added_at": at})
        if rng.random() < 0.10:  # earlier sends this month/week: the weekly and monthly caps
            for n in range(rng.randint(1, 4)):
                day = rng.choice([date(2026, 11, 2), date(2026, 11, 9), date(2026, 11, 10), date(2026, 12, 28),
                                  date(2026, 12, 29), date(2027, 1, 1)])
                rows["sop_send"].append({"key": f"prior:{ext}:{n}", "target": ext, "target_type": "customer",
                                         "source": "path:prior", "step": "x", "day": day})
    for n in range(5):  # a reminder card already took part of BUSY's limit on 11-11
        rows["sop_task"].append({"task_id": f"prior{n}", "key": f"prior-task:{n}", "userid": BUSY, "source": "x",
                                 "day": date(2026, 11, 11)})
    _groups(rng, rows)
    return rows


def _tags(rng: random.Random) -> list[str]:
    out = [f"产品持有/{p}" for p, share in (("代发", 0.6), ("按揭", 0.35), ("信用卡", 0.35), ("理财", 0.35))
           if rng.random() < share]
    risk = rng.choice(["稳健型", "未评估", "已过期", None, None])
    if risk:
        out.append(f"风险评估/{risk}")
    if rng.random() < 0.06:
        out.append("偏好/免打扰")
    return out


def _groups(rng: random.Random, rows: dict[str, list[dict[str, Any]]]) -> None:
    """Groups created N days before each planned day, for every calendar step offset."""
    offsets = [0, 3, 5, 6, 7, 14, 30, 45, 60, 61, 8, 20]
    types = ["payroll", "elderly", "event", "regional", None]
    n = 0
    for day in DAYS:
        for k in offsets:
            for gtype in types:
                owner = BUSY if n % 9 == 0 else MANAGERS[n % len(MANAGERS)]
                created: datetime | None = datetime.combine(day - timedelta(days=k), time(rng.randint(0, 23)), SH)
                status = "dismissed" if n % 17 == 3 else "active"
                if n % 23 == 5:
                    created = None
                chat = f"wr{n:04d}"
                rows["group"].append({"chat_id": chat, "name": f"群{n}", "owner": owner, "group_type": gtype,
                                      "created_at": created, "status": status})
                if gtype == "payroll":
                    for j in range(rng.randint(0, 12)):
                        member = f"wm{rng.randrange(N_CUSTOMERS):05d}"
                        rows["member_of"].append({"chat_id": chat, "member_id": member,
                                                  "type": rng.choice([2, 2, 2, 1]),
                                                  "left_at": T0 if j % 7 == 6 else None})
                n += 1


async def seed(session: AsyncSession) -> None:
    rows = dataset()
    # A member may be drawn twice for one group: keep the first.
    seen: set[tuple[str, str]] = set()
    members = []
    for r in rows["member_of"]:
        if (r["chat_id"], r["member_id"]) not in seen:
            seen.add((r["chat_id"], r["member_id"]))
            members.append(r)
    crm_seen: set[str] = set()
    crm = [r for r in rows["crm"] if not (r["crm_id"] in crm_seen or crm_seen.add(r["crm_id"]))]
    tables: list[tuple[Any, list[dict[str, Any]], dict[str, Any]]] = [
        (Member, rows["member"], {}),
        (TagGroup, rows["tag_group"], {}),
        (Tag, rows["tag"], {"deleted": False}),
        (Customer, rows["customer"], {"updated_at": T0}),
        (CrmCustomer, crm, {"updated_at": T0}),
        (Binding, rows["binding"], {"source": "explicit", "bound_at": T0}),
        (Follow, rows["follow"], {}),
        (FollowTag, _unique(rows["follow_tag"], ("userid", "external_userid", "tag_id")), {}),
        (GroupChat, rows["group"], {"updated_at": T0}),
        (GroupMember, members, {"joined_at": T0}),
        (SopSend, rows["sop_send"], {"created_at": T0}),
        (SopTask, rows["sop_task"], {"created_at": T0}),
    ]
    for model, data, defaults in tables:
        if data:
            await session.execute(insert(model), [{**defaults, **r} for r in data])
    await session.commit()


def _unique(rows: list[dict[str, Any]], key: tuple[str, ...]) -> list[dict[str, Any]]:
    out: dict[tuple[Any, ...], dict[str, Any]] = {}
    for r in rows:
        out.setdefault(tuple(r[k] for k in key), r)
    return list(out.values())


# -- applying decisions as the executor does --------------------------------------------------

async def apply(session: AsyncSession, pb: Playbook, decisions: list[Decision]) -> None:
    """sop_send for pushes, sop_task for cards, a later day's sop_task for carried cards."""
    sends, tasks = [], []
    now = datetime(2026, 11, 1, tzinfo=UTC)
    for d in decisions:
        if isinstance(d, Planned) and d.kind in ("group", "private"):
            sends.append({"key": d.key, "target": d.target, "target_type": "group" if d.kind == "group" else "customer",
                          "source": d.source, "step": d.step, "sender": d.sender, "material": d.material or "",
                          "day": d.day, "created_at": now})
        elif isinstance(d, Planned) and d.kind == "task":
            tasks.append({"task_id": task_id_for(d.key), "key": d.key, "userid": d.sender, "target": d.target,
                          "source": d.source, "day": d.day, "created_at": now})
    if sends:
        await session.execute(insert(SopSend), sends)
    if tasks:
        await session.execute(insert(SopTask), tasks)
    for d in decisions:
        carry = getattr(d, "carry", None)
        if isinstance(d, Skip) and isinstance(carry, Planned):
            day = d.day
            for _ in range(60):  # as cards.defer_card: the first later workday with room
                day = pb.work_calendar.next_workday(day + timedelta(days=1))
                n = await session.scalar(select(func.count()).select_from(SopTask)
                                         .where(SopTask.userid == carry.sender, SopTask.day == day))
                if int(n or 0) < pb.policy.manager_daily_tasks:
                    break
            await session.execute(insert(SopTask), [{"task_id": task_id_for(carry.key), "key": carry.key,
                                                     "userid": carry.sender, "target": carry.target,
                                                     "source": carry.source, "day": day, "status": "deferred",
                                                     "created_at": now}])


def canon(d: Decision) -> str:
    """One decision as text: every field that reaches the executor."""
    if isinstance(d, Planned):
        return "|".join(["P", d.kind, d.source, d.step, d.target, d.sender, d.day.isoformat(), f"{d.at:%H:%M}",
                         d.material or "", json.dumps(sorted(d.context.items()), ensure_ascii=False),
                         ",".join(d.add_tags), ",".join(d.remove_tags), str(d.allow_select)])
    carry = getattr(d, "carry", None)
    return "|".join(["S", d.source, d.step, d.target, d.day.isoformat(), d.reason,
                     canon(carry) if isinstance(carry, Planned) else ""])


def digest(lines: list[str]) -> str:
    return hashlib.sha256("\n".join(sorted(lines)).encode()).hexdigest()


def summary(lines: list[str]) -> dict[str, int]:
    """Counts by decision kind and source (and skip reason head): what a failing digest shows."""
    out: Counter[str] = Counter()
    for line in lines:
        f = line.split("|")
        out[f"{f[1]} {f[2]}" if f[0] == "P" else f"skip {f[1]} {f[5].split(':')[0][:24]}"] += 1
    return dict(sorted(out.items()))


# -- the runs ---------------------------------------------------------------------------------

Run = Callable[[AsyncSession, Playbook, date], Awaitable[list[Decision]]]


async def _collect(decisions: AsyncIterator[Decision]) -> list[Decision]:
    return [d async for d in decisions]


def slot_run(**options: Any) -> Run:
    """Plan ``day`` slot by slot, applying each slot's decisions before the next (as the jobs do)."""

    async def run(session: AsyncSession, pb: Playbook, day: date) -> list[Decision]:
        out: list[Decision] = []
        for at in sorted(slot_times(pb)):
            now = datetime.combine(day, at, SH)
            decided = await _collect(SlotPlanner(pb, day, at, now, **options).run(session))
            await apply(session, pb, decided)
            out += decided
        return out

    return run


async def day_run(session: AsyncSession, pb: Playbook, day: date) -> list[Decision]:
    decided = await _collect(DayPlanner(pb, day).run(session))
    await apply(session, pb, decided)
    return decided


async def plan_days(url: str, pb: Playbook, run: Run) -> dict[str, list[str]]:
    """Every day's decisions as text; the database is left as seeded (rolled back)."""
    engine = make_engine(url)
    try:
        async with make_sessionmaker(engine)() as session:
            out = {day.isoformat(): [canon(d) for d in await run(session, pb, day)] for day in DAYS}
            await session.rollback()
        return out
    finally:
        await engine.dispose()


@pytest.fixture
async def seeded(db_url: str) -> str:
    engine = make_engine(db_url)
    try:
        async with make_sessionmaker(engine)() as session:
            await seed(session)
    finally:
        await engine.dispose()
    return db_url


@pytest.fixture
def playbook(playbook_dirs: dict[str, Path]) -> Playbook:
    # Loaded as of the first day planned; each day's plan judges expiry on its own date.
    return load_playbook(playbook_dirs["sop_dir"], playbook_dirs["materials_dir"], today=min(DAYS))


def _diff(expected: dict[str, list[str]], got: dict[str, list[str]]) -> str:
    lines = []
    for day in expected:
        a, b = Counter(expected[day]), Counter(got[day])
        lines += [f"{day} missing: {x}" for x in (a - b)][:5] + [f"{day} extra: {x}" for x in (b - a)][:5]
    return "\n".join(lines)


async def test_fast_planners_decide_as_the_reference(seeded: str, playbook: Playbook) -> None:
    reference = await plan_days(seeded, playbook, slot_run(scan_all=True))
    assert sum(map(len, reference.values())) > 1000  # the dataset exercises the planner
    for name, run in (("SlotPlanner", slot_run()), ("DayPlanner", day_run)):
        got = await plan_days(seeded, playbook, run)
        assert {k: Counter(v) for k, v in got.items()} == {k: Counter(v) for k, v in reference.items()}, (
            f"{name} differs from the reference:\n{_diff(reference, got)}")
    check_golden(reference)


def check_golden(decisions: dict[str, list[str]]) -> None:
    current = {day: {"count": len(v), "sha256": digest(v), "summary": summary(v)} for day, v in decisions.items()}
    if os.environ.get("PLANNER_GOLDEN") == "update":
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(json.dumps({"days": current}, ensure_ascii=False, indent=1) + "\n")
        return
    golden = json.loads(GOLDEN.read_text())["days"]
    differ = {day: {"golden": want["summary"], "now": current[day]["summary"]}
              for day, want in golden.items() if current[day]["sha256"] != want["sha256"]}
    assert not differ, (
        "the planners agree with each other but not with the golden digests: the playbook or the decision "
        "rules changed. If on purpose, refresh with PLANNER_GOLDEN=update (see the module docstring).\n"
        + json.dumps(differ, ensure_ascii=False, indent=1))
