"""A scripted bank for the cockpit: 94 days of 5,000 customers added and lost (and handed over),
group joins and quits, SOP steps done and skipped, task cards in every state, radar sends and
opens, for ten managers in three sub-branches (the sandbox's demo bank and a third sub-branch the
script opens, :func:`open_north_branch`); then today, half over.

:func:`script` is plain data (a seeded random, sorted by time). :func:`play` writes it into the
service's tables day by day as the fake clock moves (in bulk: one executemany a table a day),
running the nightly roll-up after each day as the scheduler would, so a day's roll-up is stored
before later days change its rows (a customer lost weeks after being added, a card done days
after it was issued). :func:`expect` computes every figure of the cockpit from the script
alone — plain Python, none of the code under test — for the test to compare with the page and
the report.
"""

from __future__ import annotations

import random
import statistics
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, func, insert, update
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.contacts.api import ASSIGNED_ADD_WAY, Customer, Follow, Member
from handlers.groups.api import GroupChat, GroupMember
from handlers.radar.api import RadarClick, RadarSend
from handlers.sop.api import SopTask
from scrm.adapters.db.engine import table_of
from scrm.kernel.models import Occurrence
from scrm.sandbox.state import SandboxState

TZ = ZoneInfo("Asia/Shanghai")
DAY0 = date(2026, 11, 2)  # the fake clock starts at 09:00 on this day in Shanghai
DAYS = 94  # more than 90 complete days, so a 90-day view is all scripted; today is a Thursday
TODAY = DAY0 + timedelta(days=DAYS)
NOW = datetime.combine(TODAY, time(15, 0), TZ).astimezone(UTC)
CUSTOMERS = 5000

WEST_PAYROLL, WEST_WEALTH, EAST_RETAIL = ("杭州分行/城西支行/代发服务团队", "杭州分行/城西支行/财富管理团队",
                                          "杭州分行/城东支行/零售客户团队")
NORTH = "杭州分行/城北支行"
NORTH_TEAM = NORTH + "/综合金融团队"
#: The third sub-branch the script opens in the sandbox's demo bank: (id, name, parent id) and
#: (userid, name, department id, position, leads department id).
NORTH_DEPARTMENTS = [(30, "城北支行", 1), (31, "综合金融团队", 30)]
NORTH_MEMBERS = [("zhaolei", "赵磊", 31, "客户经理", None), ("qianyun", "钱芸", 31, "理财经理", None),
                 ("fengjie", "冯杰", 31, "团队长", 31), ("shenbo", "沈波", 30, "支行行长", 30)]
#: The bank's directory as the cockpit ranks it (userid → name, department).
DIRECTORY = {
    "zhangwei": ("张伟", WEST_PAYROLL), "lina": ("李娜", WEST_PAYROLL), "wangqiang": ("王强", WEST_PAYROLL),
    "chenjing": ("陈静", WEST_WEALTH), "sunhui": ("孙慧", WEST_WEALTH),
    "gaofei": ("高飞", EAST_RETAIL), "xuming": ("徐明", EAST_RETAIL),
    "zhaolei": ("赵磊", NORTH_TEAM), "qianyun": ("钱芸", NORTH_TEAM), "fengjie": ("冯杰", NORTH_TEAM),
    "mali": ("马丽", "杭州分行/城西支行"), "hemin": ("何敏", "杭州分行/城东支行"), "shenbo": ("沈波", NORTH),
    "zhouhai": ("周海", "杭州分行"),
}
LEADS = {WEST_PAYROLL: "wangqiang", WEST_WEALTH: "sunhui", EAST_RETAIL: "xuming", NORTH_TEAM: "fengjie"}
MANAGERS = ["zhangwei", "lina", "wangqiang", "chenjing", "sunhui", "gaofei", "xuming", "zhaolei", "qianyun",
            "fengjie"]
WEIGHTS = [5, 4, 1, 3, 1, 4, 1, 4, 3, 1]
#: Every unit the cockpit can be asked for: the bank, the branch, three sub-branches, four teams.
DEPARTMENTS = ["", "杭州分行", "杭州分行/城西支行", "杭州分行/城东支行", NORTH, WEST_PAYROLL, WEST_WEALTH,
               EAST_RETAIL, NORTH_TEAM]
CHANNELS = ["payroll-qr", "branch-poster", "wealth-salon", ""]
GROUPS = {"wrG1": "zhangwei", "wrG2": "lina", "wrG3": "chenjing", "wrG4": "gaofei", "wrG5": "gaofei", "wrG6": "sunhui",
          "wrG7": "zhaolei", "wrG8": "qianyun"}
#: Skip reasons as the planner and policy write them, with the kind the cockpit must file them under.
REASONS = [
    ("quiet hours 21:00-08:30", "quiet_hours"), ("cap per_week 2 reached", "caps"),
    ("WeCom monthly receive cap 30 reached", "caps"), ("opt-out tag 营销/退订", "opt_out"),
    ("material 'payroll-wealth' expired on 2026-11-20 (valid_until)", "material"),
    ("manager_daily_tasks 30 reached for zhangwei; no workday with room found", "manager_limit"),
    ("suitability: R3 > C2 for 'wealth-r3'", "suitability"), ("consent: wealth withdrawn 2026-11-05", "consent"),
    ("misfire: 2:00:00 late, grace 1:00:00", "other"), ("template: unknown variable", "other"),
]
REASON_LABELS = {"quiet_hours": "免打扰时段", "caps": "触达次数上限", "opt_out": "客户退订",
                 "material": "素材过期或未审批", "manager_limit": "客户经理任务上限", "suitability": "适当性不符",
                 "consent": "客户未同意此类营销", "other": "其他"}


async def open_north_branch(state: SandboxState, sessions: Any) -> None:
    """The third sub-branch: in the sandbox's address book, and in the service's staff directory
    as a sync writes it (rows added, not a full sync, which would undo what a test changed in
    the directory before)."""
    for dept_id, name, parent in NORTH_DEPARTMENTS:
        state.add_department(dept_id, name, parent, order=100 - len(state.departments))
    for userid, name, dept_id, position, leads in NORTH_MEMBERS:
        state.add_member(userid, name, department=[dept_id], position=position,
                         leader_in=[leads] if leads is not None else [])
    async with sessions() as db, db.begin():
        await db.execute(insert(Member), [{"userid": u, "name": DIRECTORY[u][0], "department": DIRECTORY[u][1],
                                           "team_lead": "fengjie" if DIRECTORY[u][1] == NORTH_TEAM else None}
                                          for u, *_ in NORTH_MEMBERS])


@dataclass(frozen=True)
class Ev:
    """One thing that happens at ``at`` (UTC)."""

    at: datetime
    kind: str
    data: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)


def local_at(day: date, seconds: float) -> datetime:
    return (datetime.combine(day, time(), TZ) + timedelta(seconds=seconds)).astimezone(UTC)


@cache
def _script(seed: int) -> tuple[Ev, ...]:
    rng = random.Random(seed)
    out: list[Ev] = []
    customers: list[tuple[str, str, datetime]] = []  # (ext, userid, added at)
    joined: set[tuple[str, str]] = set()
    # Exactly CUSTOMERS new customers over the days (today's before NOW, which is 15:00).
    per_day = [0] * (DAYS + 1)
    for d in rng.choices(range(DAYS + 1), k=CUSTOMERS):
        per_day[d] += 1
    n = 0
    for d in range(DAYS + 1):
        day = DAY0 + timedelta(days=d)

        def at(lo_h: float = 9, hi_h: float = 21.5, day: date = day) -> datetime:
            return local_at(day, rng.uniform(lo_h * 3600, hi_h * 3600))

        # New customers, and what becomes of them (some lost, some removed, some handed over to
        # another manager: the old relation transferred, a new one assigned, add_way 202).
        for _ in range(per_day[d]):
            n += 1
            ext, userid = f"wmC{n:05d}", rng.choices(MANAGERS, WEIGHTS)[0]
            added = at(9, 14.9) if day == TODAY else at()
            customers.append((ext, userid, added))
            out.append(Ev(added, "follow_add", {"ext": ext, "userid": userid, "state": rng.choice(CHANNELS)}))
            fate = rng.random()
            if fate < 0.28:
                status = "lost" if fate < 0.18 else "removed" if fate < 0.25 else "transferred"
                after = rng.choice([rng.uniform(0.1, 1.5), rng.uniform(1, 9), rng.uniform(5, 40)])
                ended = added + timedelta(days=after)
                out.append(Ev(ended, "follow_end", {"ext": ext, "userid": userid, "status": status}))
                if status == "transferred":
                    heir = rng.choice([m for m in MANAGERS if m != userid])
                    out.append(Ev(ended, "handover", {"ext": ext, "userid": heir}))
        morning = local_at(day, 9 * 3600)
        known = [c for c in customers if c[2] < morning]
        # Group joins (customers, and now and then a colleague, who is not growth) and quits.
        for ext, _u, _a in rng.sample(known, min(len(known), rng.randint(20, 50))):
            chat = rng.choice(sorted(GROUPS))
            if (chat, ext) in joined:
                continue
            joined.add((chat, ext))
            joined_at = at()
            out.append(Ev(joined_at, "group_join", {"chat": chat, "member": ext, "type": 2}))
            if rng.random() < 0.3:
                quit_at = joined_at + timedelta(days=rng.uniform(0.2, 12))
                out.append(Ev(quit_at, "group_quit", {"chat": chat, "member": ext}))
        if d % 9 == 4:
            out.append(Ev(at(), "group_join", {"chat": "wrG1", "member": f"staff{d}", "type": 1}))
        # SOP steps: done for customers (whoever follows them then, maybe nobody) and groups,
        # tag steps (reach nobody), skips with every kind of reason, a deferral, a non-SOP job.
        for i, (ext, _u, _a) in enumerate(rng.sample(known, min(len(known), rng.randint(40, 100)))):
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
        for chat in rng.sample(sorted(GROUPS), 3):
            out.append(Ev(at(), "occurrence", {"job": "sop:calendar:payroll-groups:day14", "key": f"{chat}:{day}",
                                               "outcome": "done" if rng.random() < 0.8 else "skipped",
                                               "reason": "quiet hours 21:00-08:30", "expect_kind": "quiet_hours"}))
        if d % 5 == 0:
            out.append(Ev(at(), "occurrence", {"job": "sop:path:winback:s1", "key": f"wmNOBODY{d}:{day}",
                                               "outcome": "done"}))
            out.append(Ev(at(), "occurrence", {"job": "staff.nightly", "key": f"{day}T02:10:00+08:00",
                                               "outcome": "skipped", "reason": "misfire"}))
        # Task cards in every state.
        for i in range(rng.randint(20, 45)):
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
        for i in range(rng.randint(20, 60)):
            pick = rng.choice(known) if known else None
            userid = pick[1] if pick else rng.choice(MANAGERS)
            customer = pick[0] if pick and rng.random() < 0.8 else None
            sent = at()
            token = f"tok{d:02d}-{i}"
            out.append(Ev(sent, "radar_send", {"token": token, "sender": userid, "customer": customer}))
            for _ in range(rng.choice([0, 0, 1, 1, 2])):
                out.append(Ev(sent + timedelta(hours=rng.uniform(0.1, 60)), "radar_click",
                              {"token": token, "sender": userid, "customer": customer}))
    return tuple(sorted((e for e in out if e.at <= NOW), key=lambda e: e.at))


def script(seed: int = 14) -> list[Ev]:
    """The script's events, sorted by time (made once per seed: it is plain data)."""
    return list(_script(seed))


# -- writing it into the service --------------------------------------------------------------

def _updates() -> dict[str, Any]:
    follow, member, task = table_of(Follow), table_of(GroupMember), table_of(SopTask)
    return {
        "follow_end": update(follow).where(follow.c.userid == bindparam("b_user"),
                                           follow.c.external_userid == bindparam("b_ext"))
        .values(status=bindparam("b_status"), status_at=bindparam("b_at"), status_reason="scripted"),
        "group_quit": update(member).where(member.c.chat_id == bindparam("b_chat"),
                                           member.c.member_id == bindparam("b_member"))
        .values(left_at=bindparam("b_at"), quit_scene=0),
        # Escalating names the lead and leaves handled_at; any other status is the handling.
        "card_status": update(task).where(task.c.task_id == bindparam("b_task"))
        .values(status=bindparam("b_status"),
                escalated_to=func.coalesce(bindparam("b_lead", type_=task.c.escalated_to.type), task.c.escalated_to),
                handled_at=func.coalesce(bindparam("b_at", type_=task.c.handled_at.type), task.c.handled_at)),
    }


def _insert_row(e: Ev) -> tuple[Any, dict[str, Any]] | None:
    x = e.data
    if e.kind == "follow_add":
        return Follow, {"userid": x["userid"], "external_userid": x["ext"], "state": x["state"], "add_way": 1,
                        "created_at": e.at, "status": "active", "status_at": e.at}
    if e.kind == "handover":
        return Follow, {"userid": x["userid"], "external_userid": x["ext"], "state": "",
                        "add_way": ASSIGNED_ADD_WAY, "created_at": e.at, "status": "active", "status_at": e.at}
    if e.kind == "group_join":
        return GroupMember, {"chat_id": x["chat"], "member_id": x["member"], "type": x["type"], "join_scene": 3,
                             "joined_at": e.at}
    if e.kind == "occurrence":
        return Occurrence, {"job_key": x["job"], "occurrence_key": x["key"], "outcome": x["outcome"],
                            "reason": x.get("reason") if x["outcome"] != "done" else None, "at": e.at}
    if e.kind == "card":
        return SopTask, {"task_id": x["task_id"], "key": f"k:{x['task_id']}", "userid": x["userid"],
                         "source": "path:onboarding", "title": "跟进", "day": x["day"], "status": "open",
                         "created_at": e.at}
    if e.kind in ("radar_send", "radar_click"):
        row = {"token_id": x["token"], "material_id": "wealth-guide", "sender": x["sender"],
               "external_userid": x["customer"], "at": e.at}
        return (RadarSend, {**row, "occurrence": None}) if e.kind == "radar_send" else (RadarClick, row)
    return None


def _update_params(e: Ev) -> dict[str, Any]:
    x = e.data
    if e.kind == "follow_end":
        return {"b_user": x["userid"], "b_ext": x["ext"], "b_status": x["status"], "b_at": e.at}
    if e.kind == "group_quit":
        return {"b_chat": x["chat"], "b_member": x["member"], "b_at": e.at}
    escalated = x["status"] == "escalated"
    return {"b_task": x["task_id"], "b_status": x["status"], "b_lead": x["lead"] if escalated else None,
            "b_at": None if escalated else e.at}


async def apply_events(db: AsyncSession, events: list[Ev]) -> None:
    """Write ``events`` (in time order) in bulk: the rows they add, one executemany a table, then
    the changes, in their order (a card escalated, then done)."""
    rows: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    changes: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for e in events:
        if e.kind == "follow_add":
            rows[Customer].append({"external_userid": e.data["ext"], "name": f"客户{e.data['ext'][-5:]}",
                                   "updated_at": e.at})
        row = _insert_row(e)
        if row is not None:
            rows[row[0]].append(row[1])
        else:
            changes[e.kind].append(_update_params(e))
    for model, values in rows.items():
        await db.execute(insert(model), values)
    statements = _updates()
    for kind, params in changes.items():
        await db.execute(statements[kind], params)


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
        first = i
        while i < len(events) and events[i].at < end:
            i += 1
        if i > first:
            clock.set(max(clock.now(), events[i - 1].at))
            async with sessions() as db, db.begin():
                await apply_events(db, events[first:i])
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
    heirs: dict[str, tuple[str, datetime]] = field(default_factory=dict)  # ext → handed over to, when
    joins: list[tuple[str, str, int, datetime]] = field(default_factory=list)  # chat, member, type, at
    quits: list[tuple[str, str, datetime]] = field(default_factory=list)
    occurrences: list[dict[str, Any]] = field(default_factory=list)
    cards: dict[str, dict[str, Any]] = field(default_factory=dict)
    sends: list[tuple[str, str | None, datetime]] = field(default_factory=list)  # sender, customer, at
    clicks: list[tuple[str, str | None, datetime]] = field(default_factory=list)
    #: What happened on each local day, by kind (so a figure reads only its period's days).
    by_day: dict[str, dict[date, list[Any]]] = field(default_factory=lambda: defaultdict(lambda: defaultdict(list)))

    def on(self, kind: str, days: set[date]) -> list[Any]:
        index = self.by_day[kind]
        return [x for d in days if d in index for x in index[d]]


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
        elif e.kind == "handover":
            w.heirs[x["ext"]] = (x["userid"], e.at)
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
    # The day indices.
    for f in w.follows.values():
        w.by_day["added"][local_day(f["added"])].append(f)
        if f["end"] in ("lost", "removed"):
            w.by_day["ended"][local_day(f["end_at"])].append(f)
    for c, _m, _t, at in w.joins:
        w.by_day["joins"][local_day(at)].append(GROUPS[c])
    for c, _m, at in w.quits:
        w.by_day["quits"][local_day(at)].append(GROUPS[c])
    for o in w.occurrences:
        if o["job"].startswith("sop:") and o["outcome"] in ("done", "skipped"):
            target = o["key"].split(":")[0]
            w.by_day["sop"][local_day(o["at"])].append(
                (_manager_at(w, target, o["at"]), o["outcome"], target, target in GROUPS, o["key"].endswith(":tag"),
                 o.get("expect_kind")))
    for sender, _customer, at in w.sends:
        w.by_day["sends"][local_day(at)].append(sender)
    for sender, customer, at in w.clicks:
        w.by_day["clicks"][local_day(at)].append((sender, customer))
    return w


def _manager_at(w: World, target: str, at: datetime) -> str:
    """Whom the cockpit credits a step for ``target`` at ``at`` with: a group's owner; a
    customer's manager then — the first one, or after a handover the heir; nobody before the
    customer came or after they left."""
    if target in GROUPS:
        return GROUPS[target]
    f = w.follows.get(target)
    if f is None or f["added"] > at:
        return ""
    if f["end_at"] is None or f["end_at"] > at:
        return str(f["userid"])
    heir = w.heirs.get(target)
    return heir[0] if heir is not None and heir[1] <= at else ""


def _rate(a: int, b: int) -> float | None:
    return round(a / b, 4) if b else None


def growth(w: World, days: set[date], who: set[str] | None) -> dict[str, int]:
    """Contacts added and lost (by the customer) or removed (by the manager), and the net."""
    def mine(userid: str) -> bool:
        return who is None or userid in who

    added = sum(1 for f in w.on("added", days) if mine(f["userid"]))
    ended = [f["end"] for f in w.on("ended", days) if mine(f["userid"])]
    lost, removed = ended.count("lost"), ended.count("removed")
    return {"added": added, "lost": lost, "removed": removed, "net": added - lost - removed}


def figures(w: World, days: set[date], who: set[str] | None) -> dict[str, Any]:
    """The scalar figures over ``days`` for managers ``who`` (None: the whole bank, unattributed too)."""
    def mine(userid: str) -> bool:
        return who is None or userid in who

    joins = sum(1 for owner in w.on("joins", days) if mine(owner))
    quits = sum(1 for owner in w.on("quits", days) if mine(owner))
    reached: dict[bool, set[str]] = {False: set(), True: set()}
    skips = 0
    for manager, outcome, target, group, tag, _kind in w.on("sop", days):
        if not mine(manager):
            continue
        if outcome == "skipped":
            skips += 1
        elif not tag:
            reached[group].add(target)
    cards = [c for c in w.cards.values() if c["day"] in days and mine(c["userid"])]
    done = [c for c in cards if c["status"] == "done"]
    sends = sum(1 for sender in w.on("sends", days) if mine(sender))
    clicks = [c for c in w.on("clicks", days) if mine(c[0])]
    openers = {c[1] for c in clicks if c[1]}
    return {
        **growth(w, days, who),
        "group_joins": joins, "group_quits": quits, "group_net": joins - quits,
        "reach_customers": len(reached[False]), "reach_groups": len(reached[True]), "skips": skips,
        "tasks_issued": len(cards), "tasks_done": len(done),
        "tasks_not_relevant": sum(1 for c in cards if c["status"] == "not_relevant"),
        "tasks_escalated": sum(1 for c in cards if c["escalated"]),
        "tasks_median_done_s": (float(statistics.median(int((c["handled"] - c["created"]).total_seconds())
                                                        for c in done)) if done else None),
        "radar_sends": sends, "radar_opens": len(clicks), "radar_openers": len(openers),
        "radar_open_rate": _rate(len(openers), sends),
    }


def _skips_by_kind(w: World, days: set[date], who: set[str] | None) -> dict[str, int]:
    out: dict[str, int] = defaultdict(int)
    for manager, outcome, _target, _group, _tag, kind in w.on("sop", days):
        if outcome == "skipped" and (who is None or manager in who):
            out[kind] += 1
    return out


def span(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


RANK = ("added", "lost", "removed", "net", "reach_customers", "tasks_issued", "tasks_done", "radar_opens",
        "radar_open_rate")


def _rank(rows: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    rows = sorted(rows, key=lambda x: (-x["net"], -x["added"], -x["reach_customers"], x[name]))
    return [{**row, "rank": i} for i, row in enumerate(rows, 1)]


#: The last nightly roll-up: past days' task cards are counted as they stood then (a card of
#: yesterday done this morning counts as done from tonight's roll-up on); today's are live.
LAST_NIGHT = local_at(TODAY, 20 * 60)


_STORED: dict[int, tuple[list[Ev], World]] = {}


def stored_world(events: list[Ev]) -> World:
    """The script's world as the roll-up stored it: a past day's cards as they stood at the last
    nightly run, today's as they are (made once per list of events)."""
    if id(events) not in _STORED:
        w = world(events)
        night = world([e for e in events if e.at <= LAST_NIGHT])
        w.cards = {t: night.cards[t] if c["day"] < TODAY else c for t, c in w.cards.items()}
        _STORED.clear()  # keeps the one list alive, so its id is not reused
        _STORED[id(events)] = (events, w)
    return _STORED[id(events)][1]


def expect(events: list[Ev], *, days: int, dept: str = "", manager: str = "") -> dict[str, Any]:
    """The cockpit's whole answer for ``days`` ending today, computed from the script."""
    w = stored_world(events)
    since = TODAY - timedelta(days=days - 1)
    cur, prev = set(span(since, TODAY)), set(span(since - timedelta(days=days), since - timedelta(days=1)))
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
    def ranked(who: set[str]) -> dict[str, Any]:
        f = figures(w, cur, who)
        return {k: f[k] for k in RANK}

    managers = _rank([{"userid": u, "name": n, "department": dp, **ranked({u})} for u, (n, dp) in members.items()],
                     "userid")
    teams: list[dict[str, Any]] = []
    if not manager:
        children: dict[str, set[str]] = defaultdict(set)
        for u, (_n, dp) in members.items():
            rest = dp[len(dept) + 1:] if dept else dp
            children[dept if dp == dept else (f"{dept}/" if dept else "") + rest.split("/")[0]].add(u)
        teams = _rank([{"department": p, "managers": len(us), **ranked(us)} for p, us in children.items()],
                      "department")
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
        "daily": [{"day": d.isoformat(), **growth(w, {d}, who)} for d in span(since, TODAY)],
        "retention": retention,
        "teams": teams,
        "managers": managers,
    }
