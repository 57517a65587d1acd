"""90 simulated days of the shipped playbook against the sandbox, driven by the real scheduler."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from handlers.contacts.models import Customer, Follow, Member
from handlers.crm.api import CrmKeyEvent
from handlers.crm.models import CrmCustomer
from handlers.groups.models import GroupChat, GroupMember
from handlers.sop import handlers as sop_handlers
from handlers.sop.engine import run_slot
from handlers.sop.models import SopTask
from handlers.tags.models import FollowTag, Tag, TagGroup
from scrm.kernel.clock import FakeClock
from scrm.kernel.models import DueJob, Occurrence, OutboxAction
from scrm.kernel.service import Runtime
from tests.conftest import make_settings
from tests.fakes.sandbox import Sandbox, running_sandbox
from tests.support.service import drain, running_service

SH = ZoneInfo("Asia/Shanghai")
START = datetime(2026, 11, 2, 0, 0, tzinfo=UTC)  # 08:00 Shanghai, a Monday
CHAT = "wrPayrollChat1"
OLD = datetime(2026, 6, 1, tzinfo=UTC)

TAGS = {"产品持有": ["代发", "按揭", "信用卡", "理财"], "风险评估": ["稳健型", "未评估"], "偏好": ["免打扰"]}
MORTGAGE = ["产品持有/代发", "产品持有/按揭"]
CUSTOMERS: dict[str, dict[str, Any]] = {
    # payday before repayment day: "move funds" reminder
    "wmEarly": {"tags": [*MORTGAGE, "风险评估/稳健型"], "crm": {"payday": 10, "repayment_day": 15}},
    # payday after repayment day: liquidity offer
    "wmLate": {"tags": [*MORTGAGE, "风险评估/未评估"], "crm": {"payday": 25, "repayment_day": 15}},
    "wmOptOut": {"tags": [*MORTGAGE, "偏好/免打扰"], "crm": {"payday": 10, "repayment_day": 15}},
    # three paths on adjacent days: the per-day cap must hold
    "wmBusy": {"tags": ["产品持有/代发", "产品持有/按揭", "产品持有/信用卡", "产品持有/理财", "风险评估/稳健型"],
               "crm": {"payday": 10, "repayment_day": 15, "card_installments": 0, "card_spend_month": 100}},
    "wmBirthday": {"tags": [], "crm": {"birthday": "1980-11-20", "name": "王女士"}},
    "wmMature": {"tags": [], "crm": {"name": "李先生"}},
}


async def seed(runtime: Runtime, sandbox: Sandbox) -> None:
    st = sandbox.state
    st.add_member("zhangwei", "张伟")
    st.add_member("lead1", "刘组长")
    now_ts = START.timestamp()
    for ext in CUSTOMERS:
        st.add_customer(ext, external_userid=ext)
        st.add_follow("zhangwei", ext, OLD.timestamp())
    st.create_group("zhangwei", "城西科技园代发福利群", now_ts, members=["wmEarly", "wmLate"], chat_id=CHAT)
    async with runtime.sessions() as s, s.begin():
        s.add_all([Member(userid="zhangwei", name="张伟", team_lead="lead1"), Member(userid="lead1", name="刘组长")])
        s.add(GroupChat(chat_id=CHAT, name="城西科技园代发福利群", owner="zhangwei", group_type="payroll",
                        created_at=START, updated_at=START))
        for m in ("wmEarly", "wmLate"):
            s.add(GroupMember(chat_id=CHAT, member_id=m, type=2, joined_at=START))
        tag_ids: dict[str, str] = {}
        for g, names in TAGS.items():
            s.add(TagGroup(group_id=f"g-{g}", name=g))
            for n in names:
                tag_ids[f"{g}/{n}"] = f"t-{g}-{n}"
                s.add(Tag(tag_id=f"t-{g}-{n}", group_id=f"g-{g}", name=n))
        for ext, spec in CUSTOMERS.items():
            s.add(Customer(external_userid=ext, name=ext, crm_id=f"crm-{ext}", updated_at=START))
            s.add(CrmCustomer(crm_id=f"crm-{ext}", attributes=spec["crm"], updated_at=START))
            # Recent contact, so the 90-day no-contact reminder stays out of this test.
            s.add(Follow(userid="zhangwei", external_userid=ext, created_at=OLD,
                         last_contact_at=START + timedelta(days=10)))
            for t in spec["tags"]:
                s.add(FollowTag(userid="zhangwei", external_userid=ext, tag_id=tag_ids[t], added_at=OLD))


async def step(runtime: Runtime, sandbox: Sandbox, clock: FakeClock) -> None:
    """Let the pipeline run at the current time: scheduler, handlers, outbox, senders confirm."""
    await runtime.scheduler.tick()
    await drain(runtime)
    while await runtime.outbox.process_due():
        pass
    for msgid, template in sandbox.state.msg_templates.items():
        for userid, task in template.tasks.items():
            if task.status == 0:
                sandbox.state.confirm_msg_task(msgid, userid, clock.now().timestamp())


async def run_until(runtime: Runtime, sandbox: Sandbox, clock: FakeClock, end: datetime) -> None:
    """Jump from one due job to the next (a minute late, well within grace) until ``end``."""
    while True:
        async with runtime.sessions() as s:
            nxt = await s.scalar(select(func.min(DueJob.next_run_at)).where(DueJob.enabled.is_(True)))
        if nxt is None or nxt > end:
            break
        clock.set(max(clock.now(), nxt + timedelta(minutes=1)))
        await step(runtime, sandbox, clock)


def local(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, SH)


def mass_to(sandbox: Sandbox, target: str) -> list[tuple[date, str]]:
    return [(local(d.at).date(), str(d.content["text"].get("content", ""))[:12])
            for d in sandbox.state.delivered_messages(kind="mass", to=target)]


async def test_ninety_days(db_url: str, playbook_dirs: dict[str, Path]) -> None:
    clock = FakeClock(START)
    settings = make_settings(db_url, playbook={k: str(v) for k, v in playbook_dirs.items()})
    async with running_sandbox(clock) as sandbox, running_service(
            settings, clock=clock, wecom=sandbox.client, routers=[sop_handlers.router], playbook=True) as (rt, _):
        await seed(rt, sandbox)
        # A maturity on 11-30 arrives from the CRM on day one: the card comes 7 days ahead.
        async with rt.sessions() as s, s.begin():
            event = CrmKeyEvent(at=START, event_id="e1", crm_id="crm-wmMature", event_kind="maturity",
                                occurred_at=START, details={"maturity_date": "2026-11-30",
                                                            "product_name": "稳享90天", "amount": 50000.0})
            await rt.inbox.add_internal(s, event, "crm:e1")
        await step(rt, sandbox, clock)
        await run_until(rt, sandbox, clock, START + timedelta(days=45))
        # Restart mid-simulation: a fresh runtime on the same database re-registers jobs and goes on.
        before = await count_outbox(rt)
        async with running_service(settings, clock=clock, wecom=sandbox.client, routers=[sop_handlers.router],
                                   playbook=True) as (rt2, _):
            assert await count_outbox(rt2) == before  # start-up alone sends nothing
            await run_until(rt2, sandbox, clock, START + timedelta(days=90))
            await check_results(rt2, sandbox)
            await check_rerun_sends_nothing(rt2)


async def count_outbox(rt: Runtime) -> int:
    async with rt.sessions() as s:
        return int(await s.scalar(select(func.count()).select_from(OutboxAction)) or 0)


async def check_results(rt: Runtime, sandbox: Sandbox) -> None:
    group = mass_to(sandbox, CHAT)
    days = [d for d, _ in group]
    # The shipped payroll calendar: a post every Thursday from the group's first week (the
    # warm-up series, then the weekly welfare post; no Thursday in these 90 days is a holiday);
    # the salary notice on "payday(10) + 1 workday" — November only: it expired on 11-30; and
    # 理财小知识 on "payday + 11 workdays" every month (2027-01-01 元旦 is no workday).
    end = (START + timedelta(days=90)).date()
    thursdays = [START.date() + timedelta(days=n) for n in range(90)
                 if (START.date() + timedelta(days=n)).weekday() == 3 and START.date() + timedelta(days=n) <= end]

    def workdays_after(day: date, n: int) -> date:
        while n:
            day += timedelta(days=1)
            n -= day.weekday() < 5 and day != date(2027, 1, 1)
        return day

    tips = [workdays_after(date(y, m, 10), 11) for y, m in ((2026, 11), (2026, 12), (2027, 1))]
    expected = sorted([*thursdays, date(2026, 11, 11), *(d for d in tips if d <= end)])
    assert days == expected, group
    # Day 45: 1:1 to group members who are assessed (wmEarly), from the owner.
    assert date(2026, 12, 17) in [d for d, _ in mass_to(sandbox, "wmEarly")]
    assert date(2026, 12, 17) not in [d for d, _ in mass_to(sandbox, "wmLate")]  # 风险评估/未评估 is excluded
    # Mortgage path branches on payday vs repayment day (repayment 15th - 2 workdays).
    early = sandbox.state.delivered_messages(kind="mass", to="wmEarly")
    late = sandbox.state.delivered_messages(kind="mass", to="wmLate")
    assert any("还款" in str(d.content) for d in early)
    assert [local(d.at).date() for d in late] == [date(2026, 11, 12), date(2026, 12, 11), date(2027, 1, 13)]
    assert all("还款" not in str(d.content) or "周转" in str(d.content) for d in late)
    assert sandbox.state.delivered_messages(kind="mass", to="wmOptOut") == []
    busy = Counter(local(d.at).date() for d in sandbox.state.delivered_messages(kind="mass", to="wmBusy"))
    assert busy and max(busy.values()) == 1  # per_day cap held
    async with rt.sessions() as s:
        reasons = [r for (r,) in (await s.execute(select(Occurrence.reason).where(Occurrence.outcome == "skipped")))]
        tasks = (await s.scalars(select(SopTask))).all()
    joined = "\n".join(r or "" for r in reasons)
    assert "opt-out" in joined and "cap per_day" in joined and "expired" in joined, joined
    # Birthday (11-20, card a day ahead at 16:00) and maturity (11-30, 7 days ahead): once each, to zhangwei.
    birthday = [t for t in tasks if t.source == "reminder:birthday"]
    maturity = [t for t in tasks if t.source == "reminder:product-maturity"]
    assert [(t.target, t.userid, t.day) for t in birthday] == [("wmBirthday", "zhangwei", date(2026, 11, 19))]
    assert [(t.target, t.userid, t.day) for t in maturity] == [("wmMature", "zhangwei", date(2026, 11, 23))]
    cards = [d for d in sandbox.state.delivered_messages(kind="app", to="zhangwei") if d.msgtype == "template_card"]
    assert sum("生日" in str(d.content) for d in cards) == 1
    assert sum("稳享90天" in str(d.content) for d in cards) == 1
    # Every send at most once: no duplicate deliveries anywhere.
    mass = [(d.to, d.msgid) for d in sandbox.state.delivered_messages(kind="mass")]
    assert len(mass) == len(set(mass))
    # Escalation: the maturity card was never answered → the team lead heard of it after 48 h.
    assert maturity[0].status == "escalated" and maturity[0].escalated_to == "lead1"
    assert any("稳享90天" in str(d.content) for d in sandbox.state.delivered_messages(kind="app", to="lead1"))


async def check_rerun_sends_nothing(rt: Runtime) -> None:
    """A second instance (or a replay) planning an already-run slot adds no outbox row."""
    pb = rt.playbook.current
    before = await count_outbox(rt)
    from datetime import time

    for day, at in ((date(2026, 11, 2), time(10, 0)), (date(2026, 11, 12), time(10, 0)),
                    (date(2026, 11, 11), time(12, 10))):
        async with rt.sessions() as s, s.begin():
            now = datetime.combine(day, at, SH) + timedelta(minutes=5)
            outcome = await run_slot(s, pb, rt.outbox, day, at, now=now, agent_id=1000002, scheduler=rt.scheduler)
        assert outcome.total_sent() == 0, outcome
    assert await count_outbox(rt) == before
