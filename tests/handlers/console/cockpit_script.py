"""A scripted bank for the cockpit: 45 days of customers added and lost, group joins and quits,
SOP steps done and skipped, task cards in every state, radar sends and opens, for seven managers
in two sub-branches of the sandbox's demo bank; then today, half over.

:func:`script` is plain data (a seeded random, sorted by time). :func:`play` writes it into the
service's tables day by day as the fake clock moves, running the nightly roll-up after each day
as the scheduler would, so a day's roll-up is stored before later days change its rows (a
customer lost weeks after being added, a card done days after it was issued). :func:`expect`
computes every figure of the cockpit from the script alone — plain Python, none of the code
under test — for the test to compare with the page and the report.
"""

from __future__ import annotations

import random
import statistics
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.contacts.api import Customer, Follow
from handlers.groups.api import GroupChat, GroupMember
from handlers.radar.api import RadarClick, RadarSend
from handlers.sop.api import SopTask
from scrm.kernel.models import Occurrence

TZ = ZoneInfo("Asia/Shanghai")
DAY0 = date(2026, 11, 2)  # the fake clock starts at 09:00 on this day in Shanghai
DAYS = 45
TODAY = DAY0 + timedelta(days=DAYS)
NOW = datetime.combine(TODAY, time(15, 0), TZ).astimezone(UTC)

WEST_PAYROLL, WEST_WEALTH, EAST_RETAIL = ("杭州分行/城西支行/代发服务团队", "杭州分行/城西支行/财富管理团队",
                                          "杭州分行/城东支行/零售客户团队")
#: The demo bank's directory as the cockpit ranks it (userid → name, department).
DIRECTORY = {
    "zhangwei": ("张伟", WEST_PAYROLL), "lina": ("李娜", WEST_PAYROLL), "wangqiang": ("王强", WEST_PAYROLL),
    "chenjing": ("陈静", WEST_WEALTH), "sunhui": ("孙慧", WEST_WEALTH),
    "gaofei": ("高飞", EAST_RETAIL), "xuming": ("徐明", EAST_RETAIL),
    "mali": ("马丽", "杭州分行/城西支行"), "hemin": ("何敏", "杭州分行/城东支行"), "zhouhai": ("周海", "杭州分行"),
}
LEADS = {WEST_PAYROLL: "wangqiang", WEST_WEALTH: "sunhui", EAST_RETAIL: "xuming"}
MANAGERS = ["zhangwei", "lina", "wangqiang", "chenjing", "sunhui", "gaofei", "xuming"]
WEIGHTS = [5, 4, 1, 3, 1, 4, 1]
CHANNELS = ["payroll-qr", "branch-poster", "wealth-salon", ""]
GROUPS = {"wrG1": "zhangwei", "wrG2": "lina", "wrG3": "chenjing", "wrG4": "gaofei", "wrG5": "gaofei", "wrG6": "sunhui"}
#: Skip reasons as the planner and policy write them, with the kind the cockpit must file them under.
REASONS = [
    ("quiet hours 21:00-08:30", "quiet_hours"), ("cap per_week 2 reached", "caps"),
    ("WeCom monthly receive cap 30 reached", "caps"), ("opt-out tag 营销/退订", "opt_out"),
    ("material 'payroll-wealth' expired on 2026-11-20 (valid_until)", "material"),
    ("manager_daily_tasks 30 reached for zhangwei; no workday with room found", "manager_limit"),
    ("misfire: 2:00:00 late, grace 1:00:00", "other"), ("template: unknown variable", "other"),
]
REASON_LABELS = {"quiet_hours": "免打扰时段", "caps": "触达次数上限", "opt_out": "客户退订",
                 "material": "素材过期或未审批", "manager_limit": "客户经理任务上限", "other": "其他"}


@dataclass(frozen=True)
class Ev:
    """One thing that happens at ``at`` (UTC)."""

    at: datetime
    kind: str
    data: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)


def local_at(day: date, seconds: float) -> datetime:
    return (datetime.combine(day, time(), TZ) + timedelta(seconds=seconds)).astimezone(UTC)


def script(seed: int = 14) -> list[Ev]:
    rng = random.Random(seed)
    out: list[Ev] = []
    customers: list[tuple[str, str, datetime]] = []  # (ext, userid, added at)
    n = 0
    for d in range(DAYS + 1):
        day = DAY0 + timedelta(days=d)

        def at(lo_h: float = 9, hi_h: float = 21.5, day: date = day) -> datetime:
            return local_at(day, rng.uniform(lo_h * 3600, hi_h * 3600))

        # New customers, and what becomes of them (some lost, some removed, a few transferred).
        for _ in range(rng.randint(5, 14)):
            n += 1
            ext, userid = f"wmC{n:04d}", rng.choices(MANAGERS, WEIGHTS)[0]
            added = at()
            customers.append((ext, userid, added))
            out.append(Ev(added, "follow_add", {"ext": ext, "userid": userid, "state": rng.choice(CHANNELS)}))
            fate = rng.random()
            if fate < 0.28:
                status = "lost" if fate < 0.18 else "removed" if fate < 0.25 else "transferred"
                after = rng.choice([rng.uniform(0.1, 1.5), rng.uniform(1, 9), rng.uniform(5, 40)])
                out.append(Ev(added + timedelta(days=after), "follow_end", {"ext": ext, "userid": userid,
                                                                             "status": status}))
        known = [c for c in customers if c[2] < local_at(day, 9 * 3600)]
        # Group joins (customers, and now and then a colleague, who is not growth) and quits.
        for ext, _u, _a in rng.sample(known, min(len(known), rng.randint(2, 6))):
            chat = rng.choice(sorted(GROUPS))
            if any(e.kind == "group_join" and e.data["chat"] == chat and e.data["member"] == ext for e in out):
                continue
            joined = at()
            out.append(Ev(joined, "group_join", {"chat": chat, "member": ext, "type": 2}))
            if rng.random() < 0.3:
                quit_at = joined + timedelta(days=rng.uniform(0.2, 12))
                out.append(Ev(quit_at, "group_quit", {"chat": chat, "member": ext}))
        if d % 9 == 4:
            out.append(Ev(at(), "group_join", {"chat": "wrG1", "member": f"staff{d}", "type": 1}))
        # SOP steps: done for customers (whoever follows them then, maybe nobody) and groups,
        # tag steps (reach nobody), skips with every kind of reason, a deferral, a non-SOP job.
        for i, (ext, _u, _a) in enumerate(rng.sample(known, min(len(known), rng.randint(4, 12)))):
            step = f"sop:path:onboarding:s{i % 3}"
            roll = rng.random()
            if roll < 0.55:
                out.append(Ev(at(), "occurrence", {"job": step, "key": f"{ext}:{day}", "outcome": "done"}))
            elif roll < 0.65:
                out.append(Ev(at(), "occurrence", {"job": step, "key": f"{ext}:{day}:tag", "outcome": "done"}))
            elif roll < 0.95:
                reason, kind = rng.choice(REASONS)
                out.append(Ev(at(), "occurrence", {"job": step, "key": f"{ext}:{day}", "outcome": "skipped",
                                                   "reason": reason, "expect_kind": kind}))
            else:
                out.append(Ev(at(), "occurrence", {"job": step, "key": f"{ext}:{day}:task", "outcome": "deferred",
                                                   "reason": "manager_daily_tasks 30 reached; carried over"}))
        for chat in rng.sample(sorted(GROUPS), 2):
            out.append(Ev(at(), "occurrence", {"job": "sop:calendar:payroll-groups:day14", "key": f"{chat}:{day}",
                                               "outcome": "done" if rng.random() < 0.8 else "skipped",
                                               "reason": "quiet hours 21:00-08:30", "expect_kind": "quiet_hours"}))
        if d % 5 == 0:
            out.append(Ev(at(), "occurrence", {"job": "sop:path:winback:s1", "key": f"wmNOBODY{d}:{day}",
                                               "outcome": "done"}))
            out.append(Ev(at(), "occurrence", {"job": "staff.nightly", "key": f"{day}T02:10:00+08:00",
                                               "outcome": "skipped", "reason": "misfire"}))
        # Task cards in every state.
        for i in range(rng.randint(3, 8)):
            userid = rng.choices(MANAGERS, WEIGHTS)[0]
            created = at(9, 12)
            task_id = f"t{d:02d}-{i}"
            out.append(Ev(created, "card", {"task_id": task_id, "userid": userid, "day": day}))
            fate = rng.random()
            lead = LEADS[DIRECTORY[userid][1]]
            if fate < 0.4:
                out.append(Ev(created + timedelta(minutes=rng.randint(5, 60 * 30)), "card_status",
                              {"task_id": task_id, "status": "done"}))
            elif fate < 0.5:
                out.append(Ev(created + timedelta(minutes=rng.randint(5, 600)), "card_status",
                              {"task_id": task_id, "status": "not_relevant"}))
            elif fate < 0.7:
                escalated = created + timedelta(hours=4)
                out.append(Ev(escalated, "card_status", {"task_id": task_id, "status": "escalated", "lead": lead}))
                if rng.random() < 0.5:
                    out.append(Ev(escalated + timedelta(days=rng.uniform(0.5, 6)), "card_status",
                                  {"task_id": task_id, "status": "done"}))
            elif fate < 0.8:
                out.append(Ev(created + timedelta(hours=1), "card_status", {"task_id": task_id, "status": "snoozed"}))
            # else: still open
        # Radar: tracked links sent (1:1 and to groups), opened now and then, sometimes days later.
        for i in range(rng.randint(3, 9)):
            ext, userid, _a = rng.choice(known) if known else (None, rng.choice(MANAGERS), None)
            customer = ext if rng.random() < 0.8 else None
            sent = at()
            token = f"tok{d:02d}{i}"
            out.append(Ev(sent, "radar_send", {"token": token, "sender": userid, "customer": customer}))
            for _ in range(rng.choice([0, 0, 1, 1, 2])):
                out.append(Ev(sent + timedelta(hours=rng.uniform(0.1, 60)), "radar_click",
                              {"token": token, "sender": userid, "customer": customer}))
    return sorted((e for e in out if e.at <= NOW), key=lambda e: e.at)


# -- writing it into the service --------------------------------------------------------------

async def apply_event(db: AsyncSession, e: Ev) -> None:
    x = e.data
    if e.kind == "follow_add":
        db.add(Customer(external_userid=x["ext"], name=f"客户{x['ext'][-4:]}", updated_at=e.at))
        db.add(Follow(userid=x["userid"], external_userid=x["ext"], state=x["state"], add_way=1, created_at=e.at,
                      status="active", status_at=e.at))
    elif e.kind == "follow_end":
        await db.execute(update(Follow).where(Follow.userid == x["userid"], Follow.external_userid == x["ext"])
                         .values(status=x["status"], status_at=e.at, status_reason="scripted"))
    elif e.kind == "group_join":
        db.add(GroupMember(chat_id=x["chat"], member_id=x["member"], type=x["type"], join_scene=3, joined_at=e.at))
    elif e.kind == "group_quit":
        member = (GroupMember.chat_id == x["chat"]) & (GroupMember.member_id == x["member"])
        await db.execute(update(GroupMember).where(member).values(left_at=e.at, quit_scene=0))
    elif e.kind == "occurrence":
        db.add(Occurrence(job_key=x["job"], occurrence_key=x["key"], outcome=x["outcome"], reason=x.get("reason")
                          if x["outcome"] != "done" else None, at=e.at))
    elif e.kind == "card":
        db.add(SopTask(task_id=x["task_id"], key=f"k:{x['task_id']}", userid=x["userid"], source="path:onboarding",
                       title="跟进", day=x["day"], status="open", created_at=e.at))
    elif e.kind == "card_status":
        values: dict[str, Any] = {"status": x["status"]}
        if x["status"] == "escalated":
            values["escalated_to"] = x["lead"]
        else:
            values["handled_at"] = e.at
        await db.execute(update(SopTask).where(SopTask.task_id == x["task_id"]).values(**values))
    elif e.kind == "radar_send":
        db.add(RadarSend(token_id=x["token"], material_id="wealth-guide", sender=x["sender"],
                         external_userid=x["customer"], occurrence=None, at=e.at))
    elif e.kind == "radar_click":
        db.add(RadarClick(token_id=x["token"], material_id="wealth-guide", sender=x["sender"],
                          external_userid=x["customer"], at=e.at))
    await db.flush()


async def play(events: list[Ev], sessions: Any, clock: Any, nightly: Callable[[date], Awaitable[None]]) -> None:
    """Write the script day by day; after each day, at 00:20 the next morning, ``nightly(day)``."""
    async with sessions() as db, db.begin():
        db.add_all([GroupChat(chat_id=c, name=f"群{c}", owner=o, group_type="payroll",
                              created_at=local_at(DAY0 - timedelta(days=30), 36000), updated_at=clock.now())
                    for c, o in GROUPS.items()])
    i = 0
    for d in range(DAYS + 1):
        day = DAY0 + timedelta(days=d)
        end = min(NOW, local_at(day + timedelta(days=1), 0))
        async with sessions() as db, db.begin():
            while i < len(events) and events[i].at < end:
                clock.set(max(clock.now(), events[i].at))
                await apply_event(db, events[i])
                i += 1
        if day < TODAY:
            clock.set(local_at(day + timedelta(days=1), 20 * 60))
            await nightly(day + timedelta(days=1))
    clock.set(NOW)


# -- what the cockpit must say, from the script alone -----------------------------------------

def local_day(at: datetime) -> date:
    return at.astimezone(TZ).date()


@dataclass
class World:
    """The script's final state, as plain Python."""

    follows: dict[str, dict[str, Any]] = field(default_factory=dict)  # ext → userid, state, added, end, end_at
    joins: list[tuple[str, str, int, datetime]] = field(default_factory=list)  # chat, member, type, at
    quits: list[tuple[str, str, datetime]] = field(default_factory=list)
    occurrences: list[dict[str, Any]] = field(default_factory=list)
    cards: dict[str, dict[str, Any]] = field(default_factory=dict)
    sends: list[tuple[str, str | None, datetime]] = field(default_factory=list)  # sender, customer, at
    clicks: list[tuple[str, str | None, datetime]] = field(default_factory=list)


def world(events: list[Ev]) -> World:
    w = World()
    types: dict[tuple[str, str], int] = {}
    for e in events:
        x = e.data
        if e.kind == "follow_add":
            w.follows[x["ext"]] = {"userid": x["userid"], "state": x["state"], "added": e.at, "end": None,
                                   "end_at": None}
        elif e.kind == "follow_end":
            w.follows[x["ext"]].update(end=x["status"], end_at=e.at)
        elif e.kind == "group_join":
            w.joins.append((x["chat"], x["member"], x["type"], e.at))
            types[(x["chat"], x["member"])] = x["type"]
        elif e.kind == "group_quit":
            w.quits.append((x["chat"], x["member"], e.at))
        elif e.kind == "occurrence":
            w.occurrences.append({**x, "at": e.at})
        elif e.kind == "card":
            w.cards[x["task_id"]] = {"userid": x["userid"], "day": x["day"], "created": e.at, "status": "open",
                                     "handled": None, "escalated": False}
        elif e.kind == "card_status":
            card = w.cards[x["task_id"]]
            card["status"] = x["status"]
            if x["status"] == "escalated":
                card["escalated"] = True
            else:
                card["handled"] = e.at
        elif e.kind == "radar_send":
            w.sends.append((x["sender"], x["customer"], e.at))
        elif e.kind == "radar_click":
            w.clicks.append((x["sender"], x["customer"], e.at))
    w.quits = [q for q in w.quits if types.get((q[0], q[1])) == 2]
    w.joins = [j for j in w.joins if j[2] == 2]
    return w


def _manager_at(w: World, target: str, at: datetime) -> str:
    if target in GROUPS:
        return GROUPS[target]
    f = w.follows.get(target)
    if f is None or f["added"] > at or (f["end_at"] is not None and f["end_at"] <= at):
        return ""
    return str(f["userid"])


def _rate(a: int, b: int) -> float | None:
    return round(a / b, 4) if b else None


def figures(w: World, days: set[date], who: set[str] | None) -> dict[str, Any]:
    """The scalar figures over ``days`` for managers ``who`` (None: the whole bank, unattributed too)."""
    def mine(userid: str) -> bool:
        return who is None or userid in who

    fs = w.follows.values()
    added = sum(1 for f in fs if local_day(f["added"]) in days and mine(f["userid"]))
    lost = sum(1 for f in fs if f["end"] == "lost" and local_day(f["end_at"]) in days and mine(f["userid"]))
    removed = sum(1 for f in fs if f["end"] == "removed" and local_day(f["end_at"]) in days and mine(f["userid"]))
    joins = sum(1 for c, _m, _t, at in w.joins if local_day(at) in days and mine(GROUPS[c]))
    quits = sum(1 for c, _m, at in w.quits if local_day(at) in days and mine(GROUPS[c]))
    reached: dict[str, set[str]] = {"customer": set(), "group": set()}
    skips = 0
    for o in w.occurrences:
        if not o["job"].startswith("sop:") or local_day(o["at"]) not in days:
            continue
        target = o["key"].split(":")[0]
        if not mine(_manager_at(w, target, o["at"])):
            continue
        if o["outcome"] == "skipped":
            skips += 1
        elif o["outcome"] == "done" and not o["key"].endswith(":tag"):
            reached["group" if target in GROUPS else "customer"].add(target)
    cards = [c for c in w.cards.values() if c["day"] in days and mine(c["userid"])]
    done = [c for c in cards if c["status"] == "done"]
    sends = [s for s in w.sends if local_day(s[2]) in days and mine(s[0])]
    clicks = [c for c in w.clicks if local_day(c[2]) in days and mine(c[0])]
    openers = {c[1] for c in clicks if c[1]}
    return {
        "added": added, "lost": lost, "removed": removed, "net": added - lost - removed,
        "group_joins": joins, "group_quits": quits, "group_net": joins - quits,
        "reach_customers": len(reached["customer"]), "reach_groups": len(reached["group"]), "skips": skips,
        "tasks_issued": len(cards), "tasks_done": len(done),
        "tasks_not_relevant": sum(1 for c in cards if c["status"] == "not_relevant"),
        "tasks_escalated": sum(1 for c in cards if c["escalated"]),
        "tasks_median_done_s": (float(statistics.median(int((c["handled"] - c["created"]).total_seconds())
                                                        for c in done)) if done else None),
        "radar_sends": len(sends), "radar_opens": len(clicks), "radar_openers": len(openers),
        "radar_open_rate": _rate(len(openers), len(sends)),
    }


def _skips_by_kind(w: World, days: set[date], who: set[str] | None) -> dict[str, int]:
    out: dict[str, int] = defaultdict(int)
    for o in w.occurrences:
        if (o["outcome"] == "skipped" and o["job"].startswith("sop:") and local_day(o["at"]) in days
                and (who is None or _manager_at(w, o["key"].split(":")[0], o["at"]) in who)):
            out[o["expect_kind"]] += 1
    return out


def _span(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


RANK = ("added", "lost", "removed", "net", "reach_customers", "tasks_issued", "tasks_done", "radar_opens",
        "radar_open_rate")


def _rank(rows: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    rows = sorted(rows, key=lambda x: (-x["net"], -x["added"], -x["reach_customers"], x[name]))
    return [{**row, "rank": i} for i, row in enumerate(rows, 1)]


#: The last nightly roll-up: past days' task cards are counted as they stood then (a card of
#: yesterday done this morning counts as done from tonight's roll-up on); today's are live.
LAST_NIGHT = local_at(TODAY, 20 * 60)


def expect(events: list[Ev], *, days: int, dept: str = "", manager: str = "") -> dict[str, Any]:
    """The cockpit's whole answer for ``days`` ending today, computed from the script."""
    w = world(events)
    night = world([e for e in events if e.at <= LAST_NIGHT])
    w.cards = {t: night.cards[t] if c["day"] < TODAY else c for t, c in w.cards.items()}
    since = TODAY - timedelta(days=days - 1)
    cur, prev = set(_span(since, TODAY)), set(_span(since - timedelta(days=days), since - timedelta(days=1)))
    if manager:
        members = {manager: DIRECTORY[manager]}
    else:
        members = {u: v for u, v in DIRECTORY.items() if not dept or v[1] == dept or v[1].startswith(dept + "/")}
    who = None if not dept and not manager else set(members)
    f_cur, f_prev = figures(w, cur, who), figures(w, prev, who)
    channels = sorted({f["state"] for f in w.follows.values() if (who is None or f["userid"] in who) and (
        local_day(f["added"]) in cur | prev or (f["end"] == "lost" and local_day(f["end_at"]) in cur | prev))})

    def by_channel(state: str, kind: str, period: set[date]) -> int:
        fs = [f for f in w.follows.values() if f["state"] == state and (who is None or f["userid"] in who)]
        if kind == "added":
            return sum(1 for f in fs if local_day(f["added"]) in period)
        return sum(1 for f in fs if f["end"] == "lost" and local_day(f["end_at"]) in period)

    sk_cur, sk_prev = _skips_by_kind(w, cur, who), _skips_by_kind(w, prev, who)
    retention = []
    week = since - timedelta(days=since.weekday())
    while week <= TODAY:
        cohort = [f for f in w.follows.values() if week <= local_day(f["added"]) <= week + timedelta(days=6)
                  and (who is None or f["userid"] in who)]
        row: dict[str, Any] = {"week": week.isoformat(), "added": len(cohort)}
        for n in (1, 7, 30):
            if week + timedelta(days=6 + n) > TODAY - timedelta(days=1):
                row[f"d{n}"] = None
            else:
                # A customer handed to another manager is still the bank's: retained.
                kept = sum(1 for f in cohort if f["end_at"] is None or f["end"] == "transferred"
                           or f["end_at"] > f["added"] + timedelta(days=n))
                row[f"d{n}"] = {"retained": kept, "rate": _rate(kept, len(cohort))}
        retention.append(row)
        week += timedelta(days=7)
    managers = _rank([{"userid": u, "name": n, "department": dp, **{k: figures(w, cur, {u})[k] for k in RANK}}
                      for u, (n, dp) in members.items()], "userid")
    teams: list[dict[str, Any]] = []
    if not manager:
        children: dict[str, set[str]] = defaultdict(set)
        for u, (_n, dp) in members.items():
            rest = dp[len(dept) + 1:] if dept else dp
            children[dept if dp == dept else (f"{dept}/" if dept else "") + rest.split("/")[0]].add(u)
        teams = _rank([{"department": p, "managers": len(us), **{k: figures(w, cur, us)[k] for k in RANK}}
                       for p, us in children.items()], "department")
    label = f"{DIRECTORY[manager][0]}（{manager}）" if manager else dept or "全行"
    return {
        "period": {"days": days, "since": since.isoformat(), "until": TODAY.isoformat(),
                   "previous_since": (since - timedelta(days=days)).isoformat(),
                   "previous_until": (since - timedelta(days=1)).isoformat()},
        "scope": {"dept": dept, "manager": manager, "label": label},
        "figures": {k: {"current": f_cur[k], "previous": f_prev[k]} for k in f_cur},
        "channels": [{"channel": c, "added": {"current": by_channel(c, "added", cur),
                                              "previous": by_channel(c, "added", prev)},
                      "lost": {"current": by_channel(c, "lost", cur), "previous": by_channel(c, "lost", prev)}}
                     for c in channels],
        "skips": [{"reason": k, "label": label, "current": sk_cur.get(k, 0), "previous": sk_prev.get(k, 0)}
                  for k, label in REASON_LABELS.items()],
        "daily": [{"day": d.isoformat(), **{k: figures(w, {d}, who)[k] for k in ("added", "lost", "removed", "net")}}
                  for d in _span(since, TODAY)],
        "retention": retention,
        "teams": teams,
        "managers": managers,
    }
