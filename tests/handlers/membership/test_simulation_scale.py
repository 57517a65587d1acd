"""Every kind of behaviour, redemptions accepted and refused, lifecycle on, 90 days on the fake
clock, both databases: 300 members in CI, 10,000 with ``SCRM_SIM_MEMBERS=10000`` (the issue's
"done when"; timings in the README).

The script (seeded random) gives each member a profile — payroll customer or not, how busy, a
stretch of activity — and from it, day by day: wealth purchases, payroll credits, a card
activation, branch visits, material opens (the same material again at times), group joins,
check-ins (twice a day at times), quizzes (the same quiz again at times), and in the evening
redemption requests that the fulfilment system accepts or refuses. Lifecycle is on with the
shipped sop/lifecycle.yaml and a win-back path on ``stage_entered: silent``: every 50th member's
manager last spoke to them 50 days before the start and never again (they turn ``silent``), the
others are in touch every day.

Each day the service runs the SOP slot of the win-back steps (10:00); the day's behaviours are
posted in one batch in the evening (as a backfill would; each behaviour's own path to the ledger
is tested with its handler) and the level events handled (cards, customer messages); the
redemptions are requested, then answered through the outbox's own hooks; at night the
lifecycle nightly (03:30) and the membership lapse and review (04:00) run.

:func:`expected` works every figure out from the script and this file's YAML in plain Python:
caps, balances (spendable, reserved), lapses (never more than the spendable balance at the
time), upgrades as soon as crossed (one card and one customer message each, counted every day so
each comes in the slot of its crossing), downgrades at the monthly reviews, redemptions reserved
or refused for want of points, the day each quiet member turns silent and so the two win-back
steps each gets, once. Then everything is done again — every behaviour, every redemption request
and answer, the last night — and nothing changes.
"""

from __future__ import annotations

import os
import random
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, update

from handlers.contacts.models import Customer, Follow
from handlers.crm.api import EVENT_KINDS, CrmCustomer
from handlers.lifecycle import handlers as lifecycle_handlers
from handlers.lifecycle.jobs import JOB_KEY as LIFECYCLE_JOB
from handlers.membership import handlers as membership_handlers
from handlers.membership.jobs import JOB_KEY
from handlers.membership.ledger import Earning, post
from handlers.membership.models import (
    MembershipAccount,
    MembershipEntry,
    MembershipLevelChange,
    MembershipRedemption,
)
from handlers.membership.nightly import run_chunk
from handlers.membership.redeem import RedemptionRefused, on_answered, on_refused, request_redemption
from handlers.membership.report import audit, build
from handlers.membership.rules import load_membership
from handlers.sop import handlers as sop_handlers
from handlers.sop.models import SopSend, SopTask
from scrm.adapters.db.engine import table_of
from scrm.kernel.models import DueJob, OutboxAction
from tests.handlers.sop.seeding import local, seed
from tests.support.playbooks import write_shipped_playbook
from tests.support.service import drain
from tests.support.stack import Stack, stack

SH = ZoneInfo("Asia/Shanghai")
START = local("2026-11-02", "08:00")
DAY0 = START.date()
DAYS = 90  # 2026-11-02 .. 2027-01-30: reviews on 12-01 and 01-01
MANAGER = "zhangwei"
MEMBERS_N = int(os.environ.get("SCRM_SIM_MEMBERS", "300"))
YAML = """\
behaviours:
  purchase: {label: 购买理财, on: crm.purchase.wealth, points: 50, growth: 100, daily_cap: 1, monthly_cap: 3}
  payroll: {label: 代发工资入账, on: crm.payroll.credit, points: 20, growth: 30, daily_cap: 1, monthly_cap: 1}
  card: {label: 激活信用卡, on: crm.card.activated, points: 30, growth: 40, monthly_cap: 1}
  visit: {label: 网点到访, on: crm.interaction.visit, points: 5, growth: 10, daily_cap: 1, monthly_cap: 4}
  read: {label: 阅读资料, on: radar.open, points: 2, growth: 5, daily_cap: 3, monthly_cap: 20}
  join: {label: 加入社群, on: group.join, points: 10, growth: 20, daily_cap: 1, monthly_cap: 2}
  checkin: {label: 每日签到, on: checkin, points: 1, growth: 2, daily_cap: 1, monthly_cap: 20}
  quiz: {label: 答题, on: quiz, points: 5, growth: 8, daily_cap: 1, monthly_cap: 4}
points:
  expire: {after_days: 30}
levels:
  window_days: 30
  list:
    - {name: new, label: 新会员, growth: 0}
    - {name: ordinary, label: 普通会员, growth: 50, keep: 30}
    - {name: core, label: 核心会员, growth: 200, keep: 120, rights: {general: [积分兑换], privileges: [专属理财经理]}}
    - {name: seed, label: 种子会员, growth: 400, keep: 300}
review: {every: month, max_steps: 1}
quizzes:
  q0: {question: 问题, choices: [甲, 乙], answer: 甲}
"""
# The same numbers, written out for the model: points, growth, daily cap, monthly cap (0: none).
EARNS = {"purchase": (50, 100, 1, 3), "payroll": (20, 30, 1, 1), "card": (30, 40, 0, 1), "visit": (5, 10, 1, 4),
         "read": (2, 5, 3, 20), "join": (10, 20, 1, 2), "checkin": (1, 2, 1, 20), "quiz": (5, 8, 1, 4)}
LEVELS = [("new", 0, 0), ("ordinary", 50, 30), ("core", 200, 120), ("seed", 400, 300)]  # name, growth, keep
WINDOW = timedelta(days=30)
LAPSE = timedelta(days=30)
QUIET_SINCE = 50  # days before the start the quiet members were last in touch
WINBACK = """\
path: winback
name: 沉默唤醒
when: {stage_entered: silent}
steps:
  - {id: w1, on: "stage_entered + 1 day", at: "10:00", send: t-text}
  - {id: w2, on: "stage_entered + 8 days", at: "10:00", send: t-text}
"""
ROUTERS = [membership_handlers.router, lifecycle_handlers.router, sop_handlers.router]
JOBS = (JOB_KEY, LIFECYCLE_JOB, "sop.due:10:00")


def quiet(m: str) -> bool:
    return int(m[2:]) % 50 == 0


def silent_day() -> int:
    """The night a quiet member turns silent, by the shipped lifecycle.yaml: placed on the first
    night (51 days without contact: neither new, active nor silent — activating), silent once
    60 days have passed without contact and the 7-day minimum stay is over."""
    placed = 1
    return next(n for n in range(1, DAYS) if QUIET_SINCE + n >= 60 and n - placed >= 7)


@dataclass(frozen=True)
class Request:
    """A redemption request of one evening, and whether the fulfilment system accepts it."""

    member: str
    id: str
    points: int
    accept: bool


def at_local(n: int, hhmm: str) -> datetime:
    return local((DAY0 + timedelta(days=n)).isoformat(), hhmm)


def members() -> list[str]:
    return [f"wm{i:05d}" for i in range(MEMBERS_N)]


def script() -> tuple[dict[int, list[Earning]], dict[int, list[Request]]]:
    """Day number → that day's behaviours, and that evening's redemption requests."""
    rng = random.Random(16)
    days: dict[int, list[Earning]] = defaultdict(list)
    asks: dict[int, list[Request]] = defaultdict(list)
    for m in members():
        payroll, busy = rng.random() < 0.4, rng.choice((0.05, 0.15, 0.4))
        begin, length = rng.randint(0, 60), rng.randint(5, 80)
        payday, card_day = rng.randint(1, 28), rng.randint(0, 89) if rng.random() < 0.2 else -1
        for n in range(DAYS):
            day = DAY0 + timedelta(days=n)
            at = at_local(n, "09:00") + timedelta(minutes=rng.randint(0, 60))
            active = begin <= n < begin + length
            today: list[tuple[str, str]] = []
            if payroll and day.day == payday:
                today.append(("payroll", f"crm:pay-{m}-{n}"))
            if n == card_day:
                today.append(("card", f"crm:card-{m}"))
            if not active and rng.random() > 0.02:
                for behaviour, source in today:
                    days[n].append(Earning(m, behaviour, source, at))
                continue
            roll = rng.random()
            if roll < busy:
                today += [("read", f"radar.open:m{rng.randint(0, 30)}") for _ in range(rng.randint(1, 4))]
            if roll < busy * 0.5:
                today += [("purchase", f"crm:buy-{m}-{n}-{j}") for j in range(rng.choice((1, 1, 2)))]
            if rng.random() < busy:
                today += [("checkin", f"checkin:{day.isoformat()}")] * rng.choice((1, 1, 2))  # tapped twice
            if rng.random() < busy * 0.3:
                today.append(("quiz", f"quiz:q{rng.randint(0, 5)}"))
            if rng.random() < busy * 0.2:
                today.append(("visit", f"crm:visit-{m}-{n}"))
            if rng.random() < 0.03:
                today.append(("join", f"group.join:chat{rng.randint(0, 4)}"))
            for behaviour, source in today:
                at += timedelta(minutes=rng.randint(1, 30))
                days[n].append(Earning(m, behaviour, source, at))
            if rng.random() < busy * 0.15:
                asks[n].append(Request(m, f"r-{m}-{n}", rng.choice((20, 60, 150)), rng.random() < 0.75))
    return days, asks


@dataclass
class Member:
    level: int = 0
    points: int = 0  # spendable
    reserved: int = 0
    growth: int = 0
    lapsed: int = 0
    account: bool = False
    seen: set[str] = field(default_factory=set)
    counts: dict[tuple[str, object], int] = field(default_factory=lambda: defaultdict(int))
    grown: list[tuple[datetime, int]] = field(default_factory=list)
    due: dict[datetime, int] = field(default_factory=lambda: defaultdict(int))  # expiry moment → points
    ups: int = 0
    downs: int = 0


@dataclass
class Expected:
    members: dict[str, Member]
    entries: int = 0  # earnings written
    capped: int = 0
    repeated: int = 0
    ups_by_day: list[int] = field(default_factory=list)  # cumulative upgrades at the end of day n
    reserved: dict[str, Request] = field(default_factory=dict)
    refused_at_request: int = 0
    lapsed_total: int = 0


def expected(days: dict[int, list[Earning]], asks: dict[int, list[Request]]) -> Expected:
    """The ledger as the rules say it must be after the last night (day DAYS, 04:00)."""
    out = Expected({m: Member() for m in members()})
    ups = 0
    for n in range(DAYS + 1):
        day = DAY0 + timedelta(days=n)
        night = at_local(n, "04:00")
        # The nightly run: lapse what fell due (never more than the spendable balance) …
        for s in out.members.values():
            for moment in sorted(t for t in s.due if t <= night):
                taken = min(s.due.pop(moment), s.points)
                s.points -= taken
                s.lapsed += taken
                out.lapsed_total += taken
        # … and on the first of a month, the review.
        if day.day == 1:
            start = datetime(day.year, day.month, 1, tzinfo=SH)
            for s in out.members.values():
                recent = sum(a for t, a in s.grown if start - WINDOW < t <= start)
                if s.level > 0 and recent < LEVELS[s.level][2]:
                    s.level -= 1
                    s.downs += 1
        if n == DAYS:
            break
        for e in sorted(days.get(n, []), key=lambda e: (e.at, e.source, e.external_userid)):
            s = out.members[e.external_userid]
            s.account = True
            points, growth, per_day, per_month = EARNS[e.behaviour]
            local_day = e.at.astimezone(SH).date()
            if e.source in s.seen:
                out.repeated += 1
                continue
            if ((per_day and s.counts[(e.behaviour, local_day)] >= per_day)
                    or (per_month and s.counts[(e.behaviour, (local_day.year, local_day.month))] >= per_month)):
                out.capped += 1
                continue
            s.seen.add(e.source)
            s.counts[(e.behaviour, local_day)] += 1
            s.counts[(e.behaviour, (local_day.year, local_day.month))] += 1
            out.entries += 1
            s.points += points
            s.growth += growth
            s.grown.append((e.at, growth))
            s.due[e.at + LAPSE] += points
            recent = sum(a for t, a in s.grown if e.at - WINDOW < t <= e.at)
            reach = max(i for i, (_, floor, _) in enumerate(LEVELS) if recent >= floor)
            if reach > s.level:
                s.level = reach
                s.ups += 1
                ups += 1
        out.ups_by_day.append(ups)
        # The evening: requests reserved when the spendable balance covers them, then answered.
        for r in asks.get(n, []):
            s = out.members[r.member]
            if not s.account or s.points < r.points:
                out.refused_at_request += 1
                continue
            s.points -= r.points
            out.reserved[r.id] = r
            if not r.accept:
                s.points += r.points  # cancelled: the points come back (released, never to lapse)
    return out


async def seed_members(b: Stack) -> None:
    await seed(b, customers=[], manager=MANAGER)
    now = START - timedelta(days=100)
    ids = members()
    async with b.runtime.sessions() as s, s.begin():
        await s.execute(table_of(Customer).insert(), [
            {"external_userid": m, "name": m, "crm_id": f"crm-{m}", "type": 1, "gender": 0, "updated_at": now}
            for m in ids])
        await s.execute(table_of(CrmCustomer).insert(), [
            {"crm_id": f"crm-{m}", "attributes": {"name": m}, "updated_at": now} for m in ids])
        await s.execute(table_of(Follow).insert(), [
            {"userid": MANAGER, "external_userid": m, "remark": "", "description": "", "state": "", "add_way": 0,
             "created_at": now, "status": "active",
             "last_contact_at": START - timedelta(days=QUIET_SINCE) if quiet(m) else START} for m in ids])


async def answer_redemptions(b: Stack, accept: dict[str, bool], statuses: tuple[str, ...] = ("pending",)) -> None:
    """The fulfilment system's answers, recorded as the outbox records them: the action ``sent``
    (accepted) or ``failed`` (refused), its hook in the same transaction. ``statuses``: the
    actions to answer (every one again: a replay)."""
    async with b.runtime.sessions() as s, s.begin():
        rows = (await s.execute(select(table_of(OutboxAction)).where(
            OutboxAction.idempotency_key.like("membership.redeem:%"),
            OutboxAction.idempotency_key.not_like("%:cancel"), OutboxAction.status.in_(statuses)))).mappings().all()
        for row in rows:
            rid = str(row["payload"]["redemption"])
            if accept[rid]:
                await on_answered(s, [(row, b.clock.now())])
            else:
                await on_refused(b.runtime.outbox, s, row, "fulfilment refused (409): out of stock")
            await s.execute(update(OutboxAction).where(OutboxAction.id == row["id"])
                            .values(status="sent" if accept[rid] else "failed"))


async def request_all(b: Stack, rules: Any, requests: list[Request]) -> int:
    refused = 0
    async with b.runtime.sessions() as s, s.begin():
        for r in requests:
            try:
                await request_redemption(s, b.runtime.outbox, rules, request_id=r.id, external_userid=r.member,
                                         item="礼品卡", points=r.points, now=b.clock.now(), tz=SH, timeout_s=86400)
            except RedemptionRefused:
                refused += 1
    return refused


async def counts(b: Stack) -> tuple[int, int]:
    """Upgrade cards issued, and customer upgrade messages queued."""
    async with b.runtime.sessions() as s:
        cards = await s.scalar(select(func.count()).select_from(SopTask).where(SopTask.source == "membership"))
        messages = await s.scalar(select(func.count()).select_from(OutboxAction)
                                  .where(OutboxAction.idempotency_key.like("membership.upgrade:%")))
    return int(cards or 0), int(messages or 0)


async def snapshot(b: Stack) -> tuple[object, ...]:
    async with b.runtime.sessions() as s:
        accounts = [tuple(r) for r in (await s.execute(
            select(MembershipAccount.external_userid, MembershipAccount.points, MembershipAccount.reserved,
                   MembershipAccount.growth, MembershipAccount.level)
            .order_by(MembershipAccount.external_userid))).all()]
        entries = int(await s.scalar(select(func.count()).select_from(MembershipEntry)) or 0)
        changes = int(await s.scalar(select(func.count()).select_from(MembershipLevelChange)) or 0)
        actions = int(await s.scalar(select(func.count()).select_from(OutboxAction)) or 0)
    return accounts, entries, changes, actions


async def test_every_behaviour_and_redemptions_over_ninety_days(db_url: str, tmp_path: Path) -> None:
    days, asks = script()
    want = expected(days, asks)
    accept = {r.id: r.accept for reqs in asks.values() for r in reqs}
    ms = want.members.values()
    # The script exercises every rule (else this test could pass by doing nothing).
    behaviours = {e.behaviour for es in days.values() for e in es}
    assert behaviours == set(EARNS)
    assert want.capped > MEMBERS_N // 10 and want.repeated > MEMBERS_N // 10
    assert sum(s.ups for s in ms) > MEMBERS_N // 2 and sum(s.downs for s in ms) > MEMBERS_N // 20
    assert want.lapsed_total > 0 and want.refused_at_request > 0
    assert sum(r.accept for r in want.reserved.values()) > 0 and sum(not r.accept for r in want.reserved.values()) > 0
    playbook = write_shipped_playbook(tmp_path / "pb", paths={"winback": WINBACK})
    (playbook[0] / "membership.yaml").write_text(YAML, encoding="utf-8")
    async with stack(db_url, tmp_path, start=START, demo=False, routers=ROUTERS, playbook=playbook) as b:
        rules = load_membership(b.settings.playbook.sop_dir, EVENT_KINDS)
        await seed_members(b)
        await b.run_until(START)
        async with b.runtime.sessions() as s, s.begin():
            # Only the jobs this simulation is about (the others' work has its own tests).
            await s.execute(update(DueJob).where(DueJob.job_key.not_in(JOBS)).values(enabled=False))
        refused = 0
        for n in range(DAYS):
            # The win-back steps' slot.
            b.clock.set(at_local(n, "10:01"))
            await b.runtime.scheduler.tick()
            await drain(b.runtime)
            # The day's behaviours, posted in the evening; the level events handled at once.
            b.clock.set(at_local(n, "22:00"))
            async with b.runtime.sessions() as s, s.begin():
                await post(s, rules, days.get(n, []), tz=SH, now=b.clock.now(), inbox=b.runtime.inbox)
            await drain(b.runtime)
            # Every crossing of the day has its card and its customer message by now.
            assert await counts(b) == (want.ups_by_day[n], want.ups_by_day[n]), n
            b.clock.set(at_local(n, "23:00"))
            refused += await request_all(b, rules, asks.get(n, []))
            b.clock.set(at_local(n, "23:30"))
            await answer_redemptions(b, accept)
            async with b.runtime.sessions() as s, s.begin():  # the managers chat with everyone but the quiet
                await s.execute(update(Follow).where(Follow.external_userid.in_([m for m in members() if not quiet(m)]))
                                .values(last_contact_at=b.clock.now()))
            # The nightly lapse and review at 04:00.
            b.clock.set(at_local(n + 1, "04:01"))
            await b.runtime.scheduler.tick()
            await drain(b.runtime)
        names = [lv for lv, _, _ in LEVELS]
        async with b.runtime.sessions() as s:
            accounts = {a.external_userid: a for a in (await s.scalars(select(MembershipAccount))).all()}
            states = dict((await s.execute(select(MembershipRedemption.id, MembershipRedemption.state))).all())
            mismatches, negative = await audit(s)
            downs = {m: int(n) for m, n in (await s.execute(
                select(MembershipLevelChange.external_userid, func.count())
                .where(MembershipLevelChange.direction == "down")
                .group_by(MembershipLevelChange.external_userid))).all()}
            lapsed = {m: -int(n) for m, n in (await s.execute(
                select(MembershipEntry.external_userid, func.sum(MembershipEntry.amount))
                .where(MembershipEntry.reason == "expire").group_by(MembershipEntry.external_userid))).all()}
            over_cap = (await s.execute(
                select(MembershipEntry.external_userid, MembershipEntry.behaviour, MembershipEntry.day, func.count())
                .where(MembershipEntry.reason == "earn", MembershipEntry.kind == "growth")
                .group_by(MembershipEntry.external_userid, MembershipEntry.behaviour, MembershipEntry.day))).all()
            earned = int(await s.scalar(select(func.count()).select_from(MembershipEntry)
                                        .where(MembershipEntry.reason == "earn", MembershipEntry.kind == "growth"))
                         or 0)
            report = await build(s, rules, top=3, since=DAY0, tz=SH)
            winbacks = sorted((r.target, r.step, r.day) for r in (await s.scalars(
                select(SopSend).where(SopSend.source == "path:winback"))).all())
        # Balances, levels, lapses and downgrades member by member.
        assert set(accounts) == {m for m, s in want.members.items() if s.account}
        for m, a in accounts.items():
            w = want.members[m]
            assert (a.points, a.reserved, a.growth, a.level) == (w.points, w.reserved, w.growth, names[w.level]), m
            assert lapsed.get(m, 0) == w.lapsed, m
            assert downs.get(m, 0) == w.downs, m
        assert mismatches == [] and negative == []
        # Caps: what was written is exactly what the model let through, and no day exceeds its cap.
        assert earned == want.entries
        assert all(n <= EARNS[bname][2] for _, bname, _, n in over_cap if EARNS[bname][2])
        per_month: dict[tuple[str, str, tuple[int, int]], int] = defaultdict(int)
        for m, bname, d, n in over_cap:
            per_month[(m, bname, (d.year, d.month))] += n
        assert all(n <= EARNS[bname][3] for (_, bname, _), n in per_month.items())
        # Redemptions: reserved where the points covered them, each confirmed or cancelled as answered.
        assert refused == want.refused_at_request
        assert states == {rid: "confirmed" if r.accept else "cancelled" for rid, r in want.reserved.items()}
        # The report: the pyramid, the liability, the flows.
        assert report.levels == {n: sum(1 for m in accounts if names[want.members[m].level] == n) for n in names}
        assert report.points_outstanding == sum(s.points for s in ms) and report.points_reserved == 0
        assert sum(n for (_, d, _, _), n in report.flows.items() if d == "up") == sum(s.ups for s in ms)
        assert sum(n for (_, d, _, _), n in report.flows.items() if d == "down") == sum(s.downs for s in ms)
        # The quiet members turned silent and got the win-back series once; nobody else did.
        turned = DAY0 + timedelta(days=silent_day())
        assert winbacks == sorted((m, step, turned + timedelta(days=after)) for m in members() if quiet(m)
                                  for step, after in (("w1", 1), ("w2", 8)))
        before = await snapshot(b)
        # Replay: every behaviour, every request and answer, the last night — nothing changes.
        async with b.runtime.sessions() as s, s.begin():
            for n in range(DAYS):
                again = await post(s, rules, days.get(n, []), tz=SH, now=b.clock.now(), inbox=b.runtime.inbox)
                assert again.entries == 0 and again.changes == []
            chunk = await run_chunk(s, b.runtime.inbox, rules, day=DAY0 + timedelta(days=DAYS), now=b.clock.now(),
                                    tz=SH, limit=MEMBERS_N + 1)
            assert chunk.lapsed == 0 and chunk.changes == []
        # (A request refused for want of points left nothing behind: sent again it is a new one.)
        await request_all(b, rules, list(want.reserved.values()))
        await answer_redemptions(b, accept, ("pending", "sent", "failed"))
        await drain(b.runtime)
        assert await snapshot(b) == before

