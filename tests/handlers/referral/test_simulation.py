"""Referrals on the fake clock, both databases, through the running service: friends add managers
through referrers' QR codes (real add_external_contact callbacks carrying the code's state), the
CRM reports their events; fraud attempts are mixed in.

The script (seeded random friends who convert in the window, convert late, never convert, or
only do something that does not qualify; a referrer far over the monthly cap; bursts) and the
fraud cases (self-referral by unionid and by CRM id, found at arrival and at conversion; a loop
A→B→A; a friend through two codes; an old customer scanning a code; a referrer scanning their
own code; a code nobody holds) are played in time order. Every expectation is worked out here
from the script in plain Python (:func:`expected`): who is attributed to whom, each referral's
status, every flag, every balance in the membership ledger, every gift card. A conversion
crashes once mid-transaction and is replayed; at the end every inbox event is replayed: nothing
changes.
"""

from __future__ import annotations

import argparse
import random
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from handlers.contacts import handlers as contacts_handlers
from handlers.contacts.models import Customer, Follow
from handlers.crm.api import Binding, CrmKeyEvent
from handlers.lifecycle.api import CustomerSegment
from handlers.membership.models import MembershipAccount, MembershipEntry
from handlers.referral import handlers as referral_handlers
from handlers.referral import rewards
from handlers.referral.cli import cmd_referral
from handlers.referral.codes import mint
from handlers.referral.models import Referral, ReferralCode, ReferralFlag
from handlers.sop.models import SopTask
from scrm.kernel.models import InboxEvent
from tests.handlers.sop.seeding import local, seed
from tests.support.stack import Stack, stack

SH = ZoneInfo("Asia/Shanghai")
START = local("2026-11-02", "09:00")
OLD = START - timedelta(days=200)
MANAGERS = (("zhangwei", "张伟", None), ("lina", "李娜", None))
USERIDS = [m[0] for m in MANAGERS]
REFS = [f"wmR{i}" for i in range(8)]
FRIENDS = 70
WINDOW = timedelta(days=30)
CAP = 2
BURST, BURST_HOURS = 3, 24
REFERRER_POINTS, REFERRER_GROWTH, FRIEND_POINTS = 300, 100, 100
QUALIFYING = ("account.opened", "card.activated", "purchase.wealth")
YAML = f"""\
qualify:
  on: [crm.account.opened, crm.card.activated, crm.purchase.wealth]
  within_days: 30
rewards:
  referrer: {{points: {REFERRER_POINTS}, growth: {REFERRER_GROWTH}}}
  friend: {{points: {FRIEND_POINTS}, gift: 定制保温杯}}
caps:
  referrer_per_month: {CAP}
flags:
  burst: {{referrals: {BURST}, within_hours: {BURST_HOURS}}}
super_users:
  top: 2
"""
SEGMENTS = {"wmR0": ["代发", "理财"], "wmR1": ["代发"], "wmR2": ["理财"], "wmR3": ["代发", "信用卡"],
            "wmR4": ["信用卡"], "wmR5": ["理财"], "wmR6": [], "wmR7": ["代发"]}


@dataclass(frozen=True)
class Arrive:
    at: datetime
    friend: str
    userid: str
    code_of: str  # whose code the state carries ("?" for a code nobody holds)


@dataclass(frozen=True)
class Event:
    at: datetime
    friend: str
    event_id: str
    kind: str
    crm_id: str


Action = Arrive | Event


def secs(at: datetime) -> datetime:
    return at.replace(microsecond=0)


def script() -> list[Action]:
    """The random friends and the fraud cases, in time order."""
    rng = random.Random(17)
    actions: list[Action] = []
    for n in range(FRIENDS):
        friend = f"wmF{n:03d}"
        referrer = rng.choices(REFS, weights=[8, 3, 2, 2, 1, 1, 1, 1])[0]
        at = secs(START + timedelta(days=rng.uniform(0, 40)))
        actions.append(Arrive(at, friend, rng.choice(USERIDS), referrer))
        fate = rng.choices(["convert", "late", "never", "other"], weights=[6, 2, 2, 1])[0]
        if fate == "convert":
            first = at + timedelta(days=rng.uniform(0.05, 29.9))
            actions.append(Event(secs(first), friend, f"ev-{friend}-1", rng.choice(QUALIFYING), f"crm-{friend}"))
            if rng.random() < 0.3:  # converts again: one reward
                actions.append(Event(secs(first + timedelta(days=2)), friend, f"ev-{friend}-2", "purchase.wealth",
                                     f"crm-{friend}"))
        elif fate == "late":
            late = at + timedelta(days=rng.uniform(30.5, 40))
            actions.append(Event(secs(late), friend, f"ev-{friend}-1", rng.choice(QUALIFYING), f"crm-{friend}"))
        elif fate == "other":
            actions.append(Event(secs(at + timedelta(days=3)), friend, f"ev-{friend}-1", "maturity", f"crm-{friend}"))
    day = START + timedelta(days=5)
    actions += [
        # The same person as wmR0 (same unionid) under another contact: refused at arrival.
        Arrive(day, "wmSelfU", "lina", "wmR0"),
        Event(day + timedelta(days=1), "wmSelfU", "ev-selfu", "card.activated", "crm-wmSelfU"),
        # Bound by the CRM to wmR1's own customer number before arriving: refused at arrival.
        Arrive(day + timedelta(hours=1), "wmSelfC", "zhangwei", "wmR1"),
        Event(day + timedelta(days=1), "wmSelfC", "ev-selfc", "card.activated", "crm-wmR1"),
        # Looks new, but the CRM's conversion names wmR2's customer number: refused then.
        Arrive(day + timedelta(hours=2), "wmSelfL", "zhangwei", "wmR2"),
        Event(day + timedelta(days=2), "wmSelfL", "ev-selfl", "purchase.wealth", "crm-wmR2"),
        # wmR3 refers wmLoopB (valid); wmR3 then adds lina through wmLoopB's code: a loop.
        Arrive(day + timedelta(hours=3), "wmLoopB", "zhangwei", "wmR3"),
        Arrive(day + timedelta(days=1), "wmR3", "lina", "wmLoopB"),
        Event(day + timedelta(days=4), "wmLoopB", "ev-loopb", "account.opened", "crm-wmLoopB"),
        # Through wmR4's code, then lina through wmR5's: wmR4's friend, a flag, one reward.
        Arrive(day + timedelta(hours=4), "wmTwo", "zhangwei", "wmR4"),
        Arrive(day + timedelta(days=2), "wmTwo", "lina", "wmR5"),
        Event(day + timedelta(days=3), "wmTwo", "ev-two", "card.activated", "crm-wmTwo"),
        # Through wmR4's code to zhangwei, then the same code to lina: nothing new.
        Arrive(day + timedelta(hours=5), "wmAgain", "zhangwei", "wmR4"),
        Arrive(day + timedelta(days=1, hours=5), "wmAgain", "lina", "wmR4"),
        Event(day + timedelta(days=6), "wmAgain", "ev-again", "purchase.wealth", "crm-wmAgain"),
        # An old customer of zhangwei scans wmR5's code and adds lina: not new.
        Arrive(day + timedelta(hours=6), "wmOld", "lina", "wmR5"),
        Event(day + timedelta(days=2), "wmOld", "ev-old", "purchase.wealth", "crm-wmOld"),
        # wmR6 scans their own code; a code nobody holds.
        Arrive(day + timedelta(hours=7), "wmR6", "lina", "wmR6"),
        Arrive(day + timedelta(hours=8), "wmStray", "lina", "?"),
        # Three friends of wmR7 within two hours: a burst (kept, flagged).
        *[Arrive(day + timedelta(days=7, minutes=40 * i), f"wmB{i}", "zhangwei", "wmR7") for i in range(3)],
        *[Event(day + timedelta(days=9, hours=i), f"wmB{i}", f"ev-b{i}", "card.activated", f"crm-wmB{i}")
          for i in range(3)],
    ]
    # An arrival before its events at the same second sorts first.
    return sorted(actions, key=lambda a: (a.at, isinstance(a, Event), a.friend))


# -- the expectation, in plain Python ----------------------------------------------------------

@dataclass
class Expected:
    referrer_of: dict[str, str] = field(default_factory=dict)
    userid_of: dict[str, str] = field(default_factory=dict)
    status: dict[str, str] = field(default_factory=dict)
    flags: set[tuple[str, str, str]] = field(default_factory=set)  # (friend, referrer, reason)
    points: Counter[str] = field(default_factory=Counter)
    growth: Counter[str] = field(default_factory=Counter)
    cards: set[tuple[str, str]] = field(default_factory=set)  # (manager, friend)


def expected(actions: list[Action], unionid: dict[str, str], crm: dict[str, set[str]]) -> Expected:
    """``unionid``/``crm``: each contact's WeChat unionid and bound CRM ids as the script made them."""
    out = Expected()
    arrived: dict[str, datetime] = {}
    follows: dict[str, list[tuple[str, datetime]]] = defaultdict(list, {"wmOld": [("zhangwei", OLD)]})
    for r in REFS:
        follows[r].append(("zhangwei", OLD))
    paid: Counter[tuple[str, tuple[int, int]]] = Counter()
    for a in actions:
        if isinstance(a, Arrive):
            before = list(follows[a.friend])
            follows[a.friend].append((a.userid, a.at))
            r = a.code_of
            if r == "?":
                out.flags.add((a.friend, "", "unknown_code"))
                continue
            if a.friend in out.referrer_of:
                if out.referrer_of[a.friend] != r:
                    out.flags.add((a.friend, r, "second_code"))
                continue
            chain, up = set(), r
            while up in out.referrer_of and up not in chain:
                chain.add(up)
                up = out.referrer_of[up]
            chain.add(up)
            if a.friend == r:
                why = "self"
            elif unionid.get(a.friend) == unionid.get(r):
                why = "self_unionid"
            elif crm.get(a.friend, set()) & crm.get(r, set()):
                why = "self_crm"
            elif a.friend in chain:
                why = "loop"
            elif any(u != a.userid and at < a.at for u, at in before):
                why = "existing"
            else:
                why = ""
            if why:
                out.flags.add((a.friend, r, why))
                continue
            out.referrer_of[a.friend], out.userid_of[a.friend], arrived[a.friend] = r, a.userid, a.at
            out.status[a.friend] = "pending"
            recent = [f for f, ref in out.referrer_of.items()
                      if ref == r and a.at - timedelta(hours=BURST_HOURS) < arrived[f] <= a.at]
            if len(recent) >= BURST:
                out.flags.add((a.friend, r, "burst"))
        else:
            f = a.friend
            if f not in out.status or out.status[f] not in ("pending", "late") or a.kind not in QUALIFYING:
                continue
            r = out.referrer_of[f]
            if a.at > arrived[f] + WINDOW:
                out.status[f] = "late"
                continue
            if a.crm_id in crm.get(r, set()):
                out.status[f] = "rejected"
                out.flags.add((f, r, "self_crm"))
                continue
            local = a.at.astimezone(SH)
            month = (local.year, local.month)
            out.points[f] += FRIEND_POINTS
            out.cards.add((out.userid_of[f], f))
            if paid[(r, month)] < CAP:
                paid[(r, month)] += 1
                out.status[f] = "rewarded"
                out.points[r] += REFERRER_POINTS
                out.growth[r] += REFERRER_GROWTH
            else:
                out.status[f] = "capped"
                out.flags.add((f, r, "over_cap"))
    return out


# -- driving the service -------------------------------------------------------------------------

async def seed_bank(b: Stack) -> dict[str, str]:
    """Managers; the referrers and wmOld as customers of zhangwei (with unionid and CRM id);
    wmSelfU in the sandbox under wmR0's unionid; wmSelfC bound by the CRM to wmR1's number.
    Returns each seeded contact's unionid."""
    await seed(b, managers=MANAGERS, customers=[])
    unionid: dict[str, str] = {}
    async with b.runtime.sessions() as s, s.begin():
        for ext in [*REFS, "wmOld"]:
            c = b.state.add_customer(ext, external_userid=ext)
            b.state.add_follow("zhangwei", ext, OLD.timestamp())
            unionid[ext] = c.unionid or ""
            s.add(Customer(external_userid=ext, name=f"客户{ext}", unionid=c.unionid, crm_id=f"crm-{ext}",
                           updated_at=OLD))
            s.add(Follow(userid="zhangwei", external_userid=ext, created_at=OLD))
        for ext, segments in SEGMENTS.items():
            s.add(CustomerSegment(external_userid=ext, segments=segments, computed_at=OLD))
        s.add(Binding(crm_id="crm-wmR1", external_userid="wmSelfC", source="explicit", bound_at=OLD))
    b.state.add_customer("wmSelfU", external_userid="wmSelfU", unionid=unionid["wmR0"])
    unionid["wmSelfU"] = unionid["wmR0"]
    return unionid


async def play(b: Stack, actions: list[Action], states: dict[str, str], crash_on: str) -> None:
    crashed: list[str] = []
    real_grant = rewards.grant

    async def grant_then_crash(*args: Any, **kwargs: Any) -> Any:
        result = await real_grant(*args, **kwargs)
        awards = args[2]
        if not crashed and any(a.source == f"referral:{crash_on}:friend" for a in awards):
            crashed.append(crash_on)
            raise RuntimeError("the process died before commit")
        return result

    mp = pytest.MonkeyPatch()
    mp.setattr(rewards, "grant", grant_then_crash)
    try:
        for a in actions:
            b.clock.set(max(b.clock.now(), a.at))
            if isinstance(a, Arrive):
                state = states.get(a.code_of, "mgm-zzzzzzzzzz")
                await b.driver.add_external_contact(a.userid, a.friend, name=f"好友{a.friend}", state=state)
                if a.friend == "wmLoopB":  # wmLoopB gets a code of their own once they are a customer
                    await b.step()
                    async with b.runtime.sessions() as s:
                        assert await s.scalar(select(Referral.referrer).where(Referral.friend == "wmLoopB")) == "wmR3"
                    states["wmLoopB"] = (await mint(b.runtime.sessions, b.wecom, "wmLoopB", b.clock.now())).state
            else:
                event = CrmKeyEvent(at=b.clock.now(), event_id=a.event_id, crm_id=a.crm_id, event_kind=a.kind,
                                    occurred_at=a.at, external_userid=a.friend)
                async with b.runtime.sessions() as s, s.begin():
                    await b.runtime.inbox.add_internal(s, event, f"event:{a.event_id}")
            await b.step()
            if crashed == [crash_on] and a.friend == crash_on:
                async with b.runtime.sessions() as s:
                    failed = (await s.scalars(select(InboxEvent.id).where(InboxEvent.status != "done"))).all()
                assert len(failed) == 1  # the conversion's event, rolled back, waiting to retry
                crashed.append("replayed")
                await b.runtime.inbox.replay(list(failed), dead_only=False)
                await b.step()
    finally:
        mp.undo()
    assert crashed == [crash_on, "replayed"]


async def snapshot(b: Stack) -> dict[str, Any]:
    async with b.runtime.sessions() as s:
        referrals = {r.friend: (r.referrer, r.code, r.userid, r.status, r.conversion, r.reward_month,
                                r.referrer_rewarded, r.status_at)
                     for r in (await s.scalars(select(Referral))).all()}
        flags = sorted((f.friend, f.referrer, f.reason) for f in (await s.scalars(select(ReferralFlag))).all())
        entries = sorted((e.source, e.external_userid, e.kind, e.amount)
                         for e in (await s.scalars(select(MembershipEntry))).all())
        accounts = {a.external_userid: (a.points, a.growth) for a in (await s.scalars(select(MembershipAccount))).all()}
        cards = sorted((t.userid, t.target, t.key) for t in (await s.scalars(select(SopTask))).all()
                       if t.source == "referral")
    return {"referrals": referrals, "flags": flags, "entries": entries, "accounts": accounts, "cards": cards}


async def test_referrals_with_fraud_attempts_reward_exactly_the_rules(db_url: str, tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    async with stack(db_url, tmp_path, start=START, demo=False,
                     routers=[contacts_handlers.router, referral_handlers.router]) as b:
        (b.settings.playbook.sop_dir / "referral.yaml").write_text(YAML, encoding="utf-8")
        unionid = await seed_bank(b)
        states = {r: (await mint(b.runtime.sessions, b.wecom, r, b.clock.now())).state for r in REFS}
        actions = script()
        crm = {ext: {f"crm-{ext}"} for ext in [*REFS, "wmOld"]}
        crm["wmSelfC"] = {"crm-wmR1"}
        want = expected(actions, unionid, crm)
        # The crash hits a conversion that pays both sides.
        crash_on = next(f for f, s in sorted(want.status.items()) if s == "rewarded" and f.startswith("wmF"))
        await play(b, actions, states, crash_on)
        got = await snapshot(b)

        # The scenario has what it is meant to have (else the assertions below prove little).
        statuses = Counter(want.status.values())
        assert all(statuses[s] >= 2 for s in ("pending", "rewarded", "capped", "late")), statuses
        reasons = Counter(reason for _, _, reason in want.flags)
        assert set(reasons) == {"unknown_code", "second_code", "self", "self_unionid", "self_crm", "loop",
                                "existing", "burst", "over_cap"}, reasons
        assert reasons["self_crm"] == 2  # one at arrival, one at conversion

        assert {f: r[0] for f, r in got["referrals"].items()} == want.referrer_of
        assert {f: r[2] for f, r in got["referrals"].items()} == want.userid_of
        assert {f: r[3] for f, r in got["referrals"].items()} == want.status
        assert got["flags"] == sorted(want.flags)
        # Fraud specifically: nobody refused was rewarded, and the rejected friend's referrer earned nothing for it.
        refused = {f for f, _, reason in want.flags if reason in ("self", "self_unionid", "self_crm", "loop",
                                                                  "existing", "unknown_code")}
        assert refused == {"wmSelfU", "wmSelfC", "wmSelfL", "wmR3", "wmOld", "wmR6", "wmStray"}
        assert {e[1] for e in got["entries"] if e[1] in refused - {"wmR3", "wmR6"}} == set()
        assert got["referrals"]["wmTwo"][0] == "wmR4" and got["referrals"]["wmLoopB"][0] == "wmR3"
        # The ledger: each side's points and growth, one entry per source and kind.
        balances = {m: (want.points[m], want.growth[m]) for m in set(want.points) | set(want.growth)}
        assert got["accounts"] == balances
        sources = Counter((src, ext) for src, ext, _, _ in got["entries"])
        assert all(n == (2 if src.endswith(":referrer") else 1) for (src, _), n in sources.items())
        # One gift card per converted friend, to the manager they added through the code.
        assert {(u, t) for u, t, _ in got["cards"]} == want.cards
        assert len(got["cards"]) == len(want.cards)

        # Every inbox event again (WeCom's callbacks, the CRM's events): nothing changes.
        await b.runtime.inbox.replay(None, dead_only=False)
        b.clock.advance(300)
        await b.step()
        assert await snapshot(b) == got

        # The report, against the same expectation.
        assert await cmd_referral(argparse.Namespace(referral_command="report", top=3), b.settings,
                                  clock=b.clock) == 0
        out = capsys.readouterr().out.splitlines()
        now = b.clock.now()
        lapsed = sum(1 for f, s in want.status.items()
                     if s == "pending" and next(a.at for a in actions if isinstance(a, Arrive) and a.friend == f)
                     + WINDOW < now)
        converted = statuses["rewarded"] + statuses["capped"]
        total = len(want.status)
        assert out[0] == f"推荐好友 {total} 人，已转化 {converted} 人（{converted / total:.1%}）"
        assert f"  待转化 (pending): {statuses['pending'] - lapsed}" in out
        assert f"  窗口期内未转化 (lapsed): {lapsed}" in out
        assert f"  已奖励 (rewarded): {statuses['rewarded']}" in out
        assert f"  已拒绝（欺诈） (rejected): {statuses['rejected']}" in out
        board = sorted({r for r in want.referrer_of.values()},
                       key=lambda r: (-sum(1 for f, x in want.referrer_of.items()
                                           if x == r and want.status[f] in ("rewarded", "capped")),
                                      -sum(1 for x in want.referrer_of.values() if x == r), r))
        lines = out[out.index("推荐排行：") + 1:out.index("各分群超级用户：")]
        assert [line.split("(")[1].split(")")[0] for line in lines] == board[:3]
        flags_at = next(i for i, line in enumerate(out) if line.startswith("风控标记"))
        supers = out[out.index("各分群超级用户：") + 1:flags_at]
        want_supers = []
        for segment in sorted({s for segs in SEGMENTS.values() for s in segs}):
            best = [r for r in board if segment in SEGMENTS.get(r, [])
                    and any(x == r and want.status[f] in ("rewarded", "capped") for f, x in want.referrer_of.items())]
            if best:
                want_supers.append(segment)
            assert any(line.startswith(f"  {segment}: 客户{best[0]}") for line in supers) == bool(best)
        assert [line.split(":")[0].strip() for line in supers] == want_supers
        assert out[flags_at].startswith(f"风控标记 {len(want.flags)} 条")

        # Codes: one per referrer (and wmLoopB), each its own state within WeCom's 30 characters.
        async with b.runtime.sessions() as s:
            codes = (await s.scalars(select(ReferralCode))).all()
        assert sorted(c.external_userid for c in codes) == sorted([*REFS, "wmLoopB"])
        assert len({c.state for c in codes}) == len(codes) and all(len(c.state) <= 30 for c in codes)
