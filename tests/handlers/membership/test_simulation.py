"""200 members × 90 days of scripted behaviours on the fake clock, both databases.

The script (seeded random: purchases, material opens — the same material again, more than the
daily cap —, group joins) is posted to the ledger day by day while the service runs its nightly
lapse and review. Every expectation is worked out here from the script and this file's YAML, in
plain Python (:func:`expected`): caps, balances, lapses, upgrades as soon as crossed (one
manager card each), downgrades at the monthly reviews (one level at most). Then every earning is
posted again and the last night's chunk run again: nothing changes.
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, update

from handlers.contacts.models import Customer, Follow
from handlers.crm.api import EVENT_KINDS
from handlers.membership import handlers as membership_handlers
from handlers.membership.jobs import JOB_KEY
from handlers.membership.ledger import Earning, post
from handlers.membership.models import MembershipAccount, MembershipEntry, MembershipLevelChange
from handlers.membership.nightly import run_chunk
from handlers.membership.report import audit, build
from handlers.membership.rules import load_membership
from handlers.sop.models import SopTask
from handlers.timeline.api import Timeline
from scrm.kernel.models import DueJob, OutboxAction
from tests.handlers.sop.seeding import local, seed
from tests.support.service import drain
from tests.support.stack import Stack, stack

SH = ZoneInfo("Asia/Shanghai")
START = local("2026-11-02", "08:00")
DAY0 = START.date()
DAYS = 90  # 2026-11-02 .. 2027-01-30: reviews on 12-01 and 01-01
MEMBERS = [f"wm{i:04d}" for i in range(200)]
MANAGER = "zhangwei"
# Small numbers so 90 days see every rule at work: 30-day windows, monthly reviews, 30-day points.
YAML = """\
behaviours:
  purchase: {label: 购买理财, on: crm.purchase.wealth, points: 50, growth: 100, daily_cap: 1, monthly_cap: 3}
  read: {label: 阅读资料, on: radar.open, points: 2, growth: 5, daily_cap: 3, monthly_cap: 20}
  join: {label: 加入社群, on: group.join, points: 10, growth: 20, daily_cap: 1, monthly_cap: 2}
points:
  expire: {after_days: 30}
levels:
  window_days: 30
  list:
    - {name: new, label: 新会员, growth: 0}
    - {name: ordinary, label: 普通会员, growth: 50, keep: 30}
    - name: core
      label: 核心会员
      growth: 200
      keep: 120
      rights: {general: [积分兑换], privileges: [专属理财经理]}
    - {name: seed, label: 种子会员, growth: 400, keep: 300, rights: {privileges: [年度答谢会]}}
review: {every: month, max_steps: 1}
"""
# The same numbers, written out for the model below.
EARNS = {"purchase": (50, 100, 1, 3), "read": (2, 5, 3, 20), "join": (10, 20, 1, 2)}  # points, growth, caps
LEVELS = [("new", 0, 0), ("ordinary", 50, 30), ("core", 200, 120), ("seed", 400, 300)]  # name, growth, keep
WINDOW = timedelta(days=30)
LAPSE = timedelta(days=30)


def script() -> dict[int, list[Earning]]:
    """Day number → that day's behaviours. Each member is busy for a stretch of the 90 days (how
    busy varies), idle otherwise: busy members climb, idle ones fall back at the reviews."""
    rng = random.Random(16)
    days: dict[int, list[Earning]] = defaultdict(list)
    for m in MEMBERS:
        begin, length, busy = rng.randint(0, 60), rng.randint(5, 70), rng.choice((0.2, 0.5, 0.95))
        for n in range(DAYS):
            at = local((DAY0 + timedelta(days=n)).isoformat(), "09:00") + timedelta(minutes=rng.randint(0, 60))
            active = begin <= n < begin + length
            today: list[tuple[str, str]] = []
            if rng.random() < (busy if active else 0.03):
                # Past the daily cap of 3 at times; materials repeat (a second open earns nothing).
                today += [("read", f"radar.open:m{rng.randint(0, 40)}") for _ in range(rng.randint(1, 5))]
            if active and rng.random() < busy * 0.2:
                # Two in a day at times: the daily cap of 1.
                today += [("purchase", f"crm:ev-{m}-{n}-{j}") for j in range(rng.choice((1, 1, 2)))]
            if rng.random() < (0.06 if active else 0.01):
                today.append(("join", f"group.join:chat{rng.randint(0, 5)}"))
            for behaviour, source in today:
                at += timedelta(minutes=rng.randint(1, 40))
                days[n].append(Earning(m, behaviour, source, at))
    return days


@dataclass
class Member:
    level: int = 0
    points: int = 0
    growth: int = 0
    lapsed: int = 0
    seen: set[str] = field(default_factory=set)
    counts: dict[tuple[str, object], int] = field(default_factory=lambda: defaultdict(int))
    grown: list[tuple[datetime, int]] = field(default_factory=list)
    earned_points: list[tuple[datetime, int]] = field(default_factory=list)
    ups: int = 0
    downs: int = 0
    moves: list[tuple[str, str, str]] = field(default_factory=list)  # (direction, cause, level reached)


@dataclass
class Expected:
    members: dict[str, Member]
    capped: int = 0
    repeated: int = 0
    two_level_falls: int = 0  # reviews where a member was below the next level's keep too


def expected(days: dict[int, list[Earning]], end: datetime) -> Expected:
    """The ledger as the rules say it must be after the run whose last night is ``end``."""
    out = Expected({m: Member() for m in MEMBERS})
    for n in range(DAYS + 1):
        day = DAY0 + timedelta(days=n)
        if day.day == 1:  # the monthly review, at the nightly run before the day's behaviours
            start = datetime(day.year, day.month, day.day, tzinfo=SH)
            for s in out.members.values():
                recent = sum(a for at, a in s.grown if start - WINDOW < at <= start)
                if s.level > 0 and recent < LEVELS[s.level][2]:
                    s.level -= 1
                    s.downs += 1
                    s.moves.append(("down", f"review:{day.isoformat()}", LEVELS[s.level][0]))
                    out.two_level_falls += s.level > 0 and recent < LEVELS[s.level][2]
        for e in sorted(days.get(n, []), key=lambda e: (e.at, e.source, e.external_userid)):
            s = out.members[e.external_userid]
            points, growth, per_day, per_month = EARNS[e.behaviour]
            local_day = e.at.astimezone(SH).date()
            if e.source in s.seen:
                out.repeated += 1
                continue
            if (s.counts[(e.behaviour, local_day)] >= per_day
                    or s.counts[(e.behaviour, (local_day.year, local_day.month))] >= per_month):
                out.capped += 1
                continue
            s.seen.add(e.source)
            s.counts[(e.behaviour, local_day)] += 1
            s.counts[(e.behaviour, (local_day.year, local_day.month))] += 1
            s.points += points
            s.growth += growth
            s.grown.append((e.at, growth))
            s.earned_points.append((e.at, points))
            recent = sum(a for at, a in s.grown if e.at - WINDOW < at <= e.at)
            reach = max(i for i, (_, floor, _) in enumerate(LEVELS) if recent >= floor)
            if reach > s.level:
                s.level = reach
                s.ups += 1
                s.moves.append(("up", e.source, LEVELS[reach][0]))  # at the very earning that crossed
    for s in out.members.values():
        s.lapsed = sum(p for at, p in s.earned_points if at + LAPSE <= end)
        s.points -= s.lapsed
    return out


async def simulate(b: Stack, days: dict[int, list[Earning]]) -> None:
    await seed(b, customers=MEMBERS, manager=MANAGER, added=START - timedelta(days=100))
    rules = load_membership(b.settings.playbook.sop_dir, EVENT_KINDS)
    await b.run_until(START)  # the jobs are in place
    async with b.runtime.sessions() as s, s.begin():
        # Only the membership job runs: the others' events would find no handler here, and 30 jobs
        # a day through the scheduler triple the test's time.
        await s.execute(update(DueJob).where(DueJob.job_key != JOB_KEY).values(enabled=False))
    for n in range(1, DAYS + 1):
        # The day's behaviours; the level events and cards are handled at the next step.
        async with b.runtime.sessions() as s, s.begin():
            await post(s, rules, days.get(n - 1, []), tz=SH, now=b.clock.now(), inbox=b.runtime.inbox)
        # Just after the nightly lapse (and review) at 04:00: the scheduler and the handlers run;
        # the cards stay queued in the outbox (sending them is the outbox's, tested with it).
        b.clock.set(local((DAY0 + timedelta(days=n)).isoformat(), "04:01"))
        await b.runtime.scheduler.tick()
        await drain(b.runtime)


async def snapshot(b: Stack) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]], int]:
    async with b.runtime.sessions() as s:
        accounts = [tuple(r) for r in (await s.execute(
            select(MembershipAccount.external_userid, MembershipAccount.points, MembershipAccount.growth,
                   MembershipAccount.level).order_by(MembershipAccount.external_userid))).all()]
        entries = [tuple(r) for r in (await s.execute(
            select(MembershipEntry.external_userid, MembershipEntry.kind, MembershipEntry.source,
                   MembershipEntry.amount).order_by(MembershipEntry.id))).all()]
        changes = int(await s.scalar(select(func.count()).select_from(MembershipLevelChange)) or 0)
    return accounts, entries, changes


async def test_ninety_days_of_behaviours_caps_levels_reviews_lapses_and_replay(
        db_url: str, tmp_path: Path) -> None:
    days = script()
    end_night = local((DAY0 + timedelta(days=DAYS)).isoformat(), "06:00")  # any time between 04:01 and 08:00
    want = expected(days, end_night)
    # The script exercises every rule (else this test could pass by doing nothing).
    assert want.capped > 100 and want.repeated > 100 and want.two_level_falls > 0
    assert sum(s.ups for s in want.members.values()) > 100 and sum(s.downs for s in want.members.values()) > 10
    assert sum(s.lapsed for s in want.members.values()) > 0
    # The stack's small playbook (few jobs of its own), with this file's membership rules.
    async with stack(db_url, tmp_path, start=START, demo=False, routers=[membership_handlers.router]) as b:
        (b.settings.playbook.sop_dir / "membership.yaml").write_text(YAML, encoding="utf-8")
        await simulate(b, days)
        names = [lv for lv, _, _ in LEVELS]
        async with b.runtime.sessions() as s:
            accounts = {a.external_userid: a for a in (await s.scalars(select(MembershipAccount))).all()}
            cards = (await s.execute(select(SopTask.target, func.count()).where(SopTask.source == "membership")
                                     .group_by(SopTask.target))).all()
            moves = (await s.execute(select(MembershipLevelChange.external_userid, MembershipLevelChange.direction,
                                            MembershipLevelChange.cause, MembershipLevelChange.level))).all()
            mismatches, negative = await audit(s)
            report = await build(s, load_membership(b.settings.playbook.sop_dir, EVENT_KINDS), top=3)
            notes = await s.scalar(select(func.count()).select_from(Timeline)
                                   .where(Timeline.kind == "membership.level"))
            one_card = await s.scalar(select(SopTask).where(SopTask.source == "membership",
                                                            SopTask.title.like("%核心%")).limit(1))
        earners = {m for m, s in want.members.items() if s.seen}
        assert set(accounts) == earners
        for m in earners:
            w, got = want.members[m], accounts[m]
            assert (got.points, got.growth, got.level) == (w.points, w.growth, names[w.level]), m
        assert mismatches == [] and negative == []
        assert {m: n for m, n in cards} == {m: s.ups for m, s in want.members.items() if s.ups}
        assert sorted(tuple(r) for r in moves) == sorted((m, *move) for m, w in want.members.items()
                                                         for move in w.moves)
        assert notes == sum(s.ups + s.downs for s in want.members.values())
        assert one_card is not None and "专属特权：专属理财经理" in one_card.text and one_card.userid == MANAGER
        # The report: the pyramid, the liability, the top earner.
        assert report.levels == {n: sum(1 for m in earners if names[want.members[m].level] == n) for n in names}
        assert report.points_outstanding == sum(s.points for s in want.members.values())
        top = max(want.members.values(), key=lambda s: s.growth).growth
        assert report.top[0][1] == top
        before = await snapshot(b)
        # Replay: every earning again, and the last night's chunk again.
        rules = load_membership(b.settings.playbook.sop_dir, EVENT_KINDS)
        async with b.runtime.sessions() as s, s.begin():
            for n in range(DAYS):
                again = await post(s, rules, days.get(n, []), tz=SH, now=b.clock.now(), inbox=b.runtime.inbox)
                assert again.entries == 0 and again.changes == []
            last = DAY0 + timedelta(days=DAYS)
            chunk = await run_chunk(s, b.runtime.inbox, rules, day=last, now=b.clock.now(), tz=SH)
            assert chunk.lapsed == 0 and chunk.changes == []
            review = await run_chunk(s, b.runtime.inbox, rules, day=date(2027, 1, 1), now=b.clock.now(), tz=SH)
            assert review.changes == []  # each member is reviewed once per review day
        await drain(b.runtime)
        assert await snapshot(b) == before
        async with b.runtime.sessions() as s:
            assert await s.scalar(select(func.count()).select_from(SopTask)) == sum(n for _, n in cards)
            queued = await s.scalar(select(func.count()).select_from(OutboxAction)
                                    .where(OutboxAction.idempotency_key.like("card:%")))
            assert queued == sum(s.ups for s in want.members.values())
            # Sanity of the seeding: every member has the one manager the cards go to.
            assert await s.scalar(select(func.count()).select_from(Follow).where(Follow.userid == MANAGER)) == 200
            assert await s.scalar(select(func.count()).select_from(Customer)) == 200
