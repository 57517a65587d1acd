"""The SOP effect figures are exact: a scripted fixture (two SOPs of a test playbook with goals,
pushes confirmed or not in WeCom, cards issued and carried over, skips for every kind of reason,
radar opens, CRM events inside and outside a goal's window, a customer nobody follows, a send
before the period) gives every figure of :func:`handlers.console.effect.sop_effect` equal to
what the script itself says, computed here in plain Python; for the whole bank, a team lead's
team and one manager, on SQLite and PostgreSQL; two runs give byte-identical JSON; the page
shows the same numbers, a team lead sees only their team and is refused another branch."""

from __future__ import annotations

import json
import re
import textwrap
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from html import unescape
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from playwright.async_api import Browser, expect
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.console.access import Grant, Role
from handlers.console.effect import MAX_DAYS, sop_effect
from handlers.console.scope import ScopeRefused
from handlers.contacts.api import Customer, Follow
from handlers.crm.api import Binding, CrmEvent
from handlers.groups.api import GroupChat
from handlers.radar.api import RadarClick
from handlers.sop.api import SopMassSend, SopSend, SopTask
from scrm.kernel.models import Occurrence, OutboxAction
from scrm.playbook import Playbook
from tests.handlers.console.support import console_stack, sign_in
from tests.support.stack import Stack
from tests.support.web import free_port, screenshots_dir

TZ = ZoneInfo("Asia/Shanghai")
ZONE = "Asia/Shanghai"
WEST_PAYROLL, EAST_RETAIL = "杭州分行/城西支行/代发服务团队", "杭州分行/城东支行/零售客户团队"
TEAMS = {WEST_PAYROLL: {"zhangwei", "lina", "wangqiang"}, EAST_RETAIL: {"gaofei", "xuming"}}
ADMIN = Grant("zhouhai", Role.OPS_ADMIN)
REASON_KINDS = ("quiet_hours", "caps", "opt_out", "material", "manager_limit", "suitability", "consent", "other")

CALENDAR = """\
    calendar: payroll-effect
    name: 代发群效果
    group_type: payroll
    steps:
      - {id: hello, day: 0, at: "10:00", send: t-group-welcome}
      - {id: wealth, day: 45, at: "12:10", send: t-welcome-default, to: members,
         goal: {event: tier_up, within_days: 10}}
    """
PATH = """\
    path: wealth-follow
    name: 理财跟进
    when: {all: [兴趣/理财]}
    steps:
      - {id: plan, on: "payday + 1 workday", at: "10:00", send: t-welcome-default,
         goal: {event: interaction.visit, within_days: 7}}
      - {id: call, on: "payday + 3 workdays", at: "10:00", task: t-call-card}
    """
CARD = """\
    - id: t-call-card
      type: text
      channels: [manager]
      text: "请电话回访{customer.name}。"
      approved: {by: 合规部-测试, at: 2025-01-01}
    """
CAL, PTH = "calendar:payroll-effect", "path:wealth-follow"
#: Each SOP's steps in file order, and the goals (kind, days) the files above set.
STEPS = {CAL: ["hello", "wealth"], PTH: ["plan", "call"]}
GOALS = {(CAL, "wealth"): ("tier_up", 10), (PTH, "plan"): ("interaction.visit", 7)}

#: Customers and who follows them (wmE09: nobody); groups and their owners.
MANAGER_OF = {"wmE01": "zhangwei", "wmE02": "zhangwei", "wmE03": "lina", "wmE04": "lina", "wmE05": "gaofei",
              "wmE06": "gaofei", "wmE07": "chenjing", "wmE08": "zhangwei", "wmE10": "gaofei"}
OWNER_OF = {"wrE1": "zhangwei", "wrE2": "gaofei"}


@dataclass(frozen=True)
class Step:
    """One scripted step occurrence. ``what``: push | card | deferred | tag | skip; ``ago``: days
    before today of its planned day; ``sender``: who sent it (a push to a group's members goes
    from the owner, whoever the customer's own manager is)."""

    source: str
    step: str
    target: str
    ago: int
    what: str
    sender: str = ""
    reason: str = ""
    confirmed: bool = False
    opened: bool = False
    events: tuple[tuple[str, timedelta], ...] = field(default=())  # CRM (kind, after the send)


H = timedelta(hours=1)
D = timedelta(days=1)
SCRIPT = [
    # The path's push with a goal (a branch visit within 7 days).
    Step(PTH, "plan", "wmE01", 20, "push", "zhangwei", confirmed=True, opened=True,
         events=(("interaction.visit", 3 * D),)),
    Step(PTH, "plan", "wmE01", 20, "tag", "zhangwei"),  # the same step tagging too: one target
    Step(PTH, "plan", "wmE02", 20, "push", "zhangwei", events=(("interaction.visit", -D),)),  # before: no
    Step(PTH, "plan", "wmE03", 20, "push", "lina", confirmed=True, events=(("interaction.visit", 8 * D),)),  # late
    Step(PTH, "plan", "wmE04", 20, "skip", reason="cap per_week 2 reached"),
    Step(PTH, "plan", "wmE05", 20, "skip", reason="quiet hours 21:00-08:30"),
    Step(PTH, "plan", "wmE05", 5, "push", "gaofei", confirmed=True, opened=True,
         events=(("interaction.visit", 2 * D), ("interaction.visit", 3 * D))),
    Step(PTH, "plan", "wmE06", 35, "push", "gaofei", confirmed=True, opened=True,  # before the period
         events=(("interaction.visit", D),)),
    Step(PTH, "plan", "wmE01", 5, "push", "zhangwei", events=(("interaction.visit", D),)),  # a second month
    Step(PTH, "plan", "wmE09", 10, "skip", reason="opt-out tag 偏好/免打扰"),  # nobody's customer
    Step(PTH, "plan", "wmE08", 3, "push", "zhangwei", confirmed=True, events=(("tier_up", D),)),  # other kind
    # Its card could not be carried over, but the push went: sent, not skipped.
    Step(PTH, "plan", "wmE08", 3, "skip",
         reason="manager_daily_tasks 30 reached for zhangwei; no workday with room found"),
    Step(PTH, "plan", "wmE07", 12, "tag", "chenjing"),  # only tagged: targeted, neither sent nor skipped
    Step(PTH, "plan", "wmE10", 8, "skip", reason="misfire: 3:00:00 late, grace 2:00:00"),
    # The path's task step (no goal): cards issued, carried over, not carried over.
    # ``confirmed`` for a card: its script was sent into the chat from the sidebar (delivered).
    Step(PTH, "call", "wmE01", 18, "card", "zhangwei", opened=True),
    Step(PTH, "call", "wmE02", 18, "card", "zhangwei", confirmed=True),
    Step(PTH, "call", "wmE03", 18, "deferred", "lina", confirmed=True),
    Step(PTH, "call", "wmE07", 18, "skip",
         reason="manager_daily_tasks 30 reached for chenjing; no workday with room found"),
    # Posts in the chats (no goal).
    Step(CAL, "hello", "wrE1", 25, "push", "zhangwei", confirmed=True, opened=True),
    Step(CAL, "hello", "wrE2", 25, "push", "gaofei"),
    Step(CAL, "hello", "wrE1", 2, "skip", reason="material 't-group-welcome' expired on 2026-10-30 (valid_until)"),
    # 1:1 to the members of zhangwei's group (a tier up within 10 days); wmE05 is gaofei's customer.
    Step(CAL, "wealth", "wmE05", 15, "push", "zhangwei", confirmed=True, events=(("tier_up", 4 * D),)),
    Step(CAL, "wealth", "wmE02", 15, "push", "zhangwei", confirmed=True, opened=True, events=(("tier_up", 11 * D),)),
    Step(CAL, "wealth", "wmE10", 15, "push", "gaofei", confirmed=True, events=(("tier_up", D),)),
    Step(CAL, "wealth", "wmE04", 15, "skip", reason="WeCom monthly receive cap 30 reached"),
]


def sent_at(today: date, s: Step) -> datetime:
    return datetime.combine(today - timedelta(days=s.ago), time(10, 0), TZ).astimezone(UTC)


def script(s: Step, at: datetime) -> dict[str, Any]:
    """A card's detail: every card names a script; a confirmed one was sent from the sidebar."""
    sent = {"script_sent_at": (at + 2 * H).isoformat()} if s.confirmed else {}
    return {"buttons": ["done", "snooze", "not_relevant"], "script": "t-welcome-default", **sent}


def owner(s: Step) -> str:
    """Whom the script credits: the sender, else the chat's owner or the customer's manager."""
    return s.sender or OWNER_OF.get(s.target) or MANAGER_OF.get(s.target, "")


def expect_effect(today: date, days: int, who: set[str] | None) -> dict[tuple[str, str], dict[str, Any]]:
    """Every figure, from the script alone: (source, step) → figures, and (source, "") → the SOP's total."""
    since = today - timedelta(days=days - 1)
    sets: dict[tuple[str, str], dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    went = {(s.source, s.step, s.target, s.ago) for s in SCRIPT if s.what in ("push", "card", "deferred")}
    for s in SCRIPT:
        if not since <= today - timedelta(days=s.ago) <= today:
            continue
        if who is not None and owner(s) not in who:
            continue
        for key in ((s.source, s.step), (s.source, "")):
            got = sets[key]
            got["targeted"].add(s.target)
            if s.what == "skip" and (s.source, s.step, s.target, s.ago) not in went:
                kind = {"cap": "caps", "WeCom": "caps", "quiet": "quiet_hours", "opt-out": "opt_out",
                        "material": "material", "manager_daily_tasks": "manager_limit"}.get(s.reason.split()[0],
                                                                                             "other")
                got["skip:" + kind].add(s.target)
                got["skipped_total"].add(s.target)
            if s.what in ("push", "card", "deferred"):
                got["sent"].add(s.target)
            if s.confirmed and s.what in ("push", "card", "deferred"):
                got["delivered"].add(s.target)
            if s.opened:
                got["opened"].add(s.target)
            goal = GOALS.get((s.source, s.step))
            if goal and s.what == "push" and any(k == goal[0] and timedelta(0) < after <= timedelta(days=goal[1])
                                                 for k, after in s.events):
                got["converted"].add(s.target)
    out = {}
    for source, steps in STEPS.items():
        for step in [*steps, ""]:
            got = sets[(source, step)]
            has_goal = (source, step) in GOALS or (step == "" and any(src == source for src, _ in GOALS))
            out[(source, step)] = {
                "targeted": len(got["targeted"]), "sent": len(got["sent"]),
                "skipped": {k: len(got["skip:" + k]) for k in REASON_KINDS},
                "skipped_total": len(got["skipped_total"]), "delivered": len(got["delivered"]),
                "opened": len(got["opened"]), "converted": len(got["converted"]) if has_goal else None}
    return out


def figures_of(data: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    keys = ("targeted", "sent", "skipped", "skipped_total", "delivered", "opened", "converted")
    out = {}
    for sop in data["sops"]:
        out[(sop["source"], "")] = {k: sop["total"][k] for k in keys}
        for step in sop["steps"]:
            out[(sop["source"], step["step"])] = {k: step[k] for k in keys}
    return out


async def use_playbook(s: Stack) -> Playbook:
    sop = s.settings.playbook.sop_dir
    (sop / "calendars").mkdir(exist_ok=True)
    (sop / "paths").mkdir(exist_ok=True)
    (sop / "calendars" / "effect.yaml").write_text(textwrap.dedent(CALENDAR), encoding="utf-8")
    (sop / "paths" / "wealth.yaml").write_text(textwrap.dedent(PATH), encoding="utf-8")
    (s.settings.playbook.materials_dir / "effect.yaml").write_text(textwrap.dedent(CARD), encoding="utf-8")
    outcome = s.runtime.playbook.reload()
    assert outcome.applied, outcome
    pb = s.runtime.playbook.current
    assert pb is not None
    return pb


async def seed(db: AsyncSession, today: date, now: datetime) -> None:
    """The script as the SOP engine, WeCom's follow-up, the radar and the CRM leave it in the tables."""
    long_ago = now - timedelta(days=400)
    for ext, manager in MANAGER_OF.items():
        db.add(Follow(userid=manager, external_userid=ext, created_at=long_ago))
    for ext in [*MANAGER_OF, "wmE09"]:
        db.add(Customer(external_userid=ext, name=ext, updated_at=now))
        db.add(Binding(crm_id=f"crm-{ext}", external_userid=ext, source="direct", bound_at=long_ago))
    for chat, chat_owner in OWNER_OF.items():
        db.add(GroupChat(chat_id=chat, name=f"代发群{chat}", owner=chat_owner, group_type="payroll",
                         created_at=long_ago, updated_at=now))
    # Rows of other jobs share the table: they are no SOP step.
    db.add(Occurrence(job_key="reminder:maturity", occurrence_key=f"wmE01:{today}", outcome="done", at=now))
    for n, s in enumerate(SCRIPT):
        day = today - timedelta(days=s.ago)
        at = sent_at(today, s)
        job, occ = f"sop:{s.source}:{s.step}", f"{s.target}:{day.isoformat()}"
        key = f"sop:{s.source}:{s.step}:{s.target}:{day.isoformat()}"
        if s.what == "skip":
            suffix = ":task" if s.reason.startswith("manager_daily_tasks") else ""
            db.add(Occurrence(job_key=job, occurrence_key=occ + suffix, outcome="skipped", reason=s.reason, at=at))
        elif s.what == "tag":
            db.add(Occurrence(job_key=job, occurrence_key=occ + ":tag", outcome="done", at=at))
        elif s.what == "deferred":
            db.add(Occurrence(job_key=job, occurrence_key=occ + ":task", outcome="deferred",
                              reason="manager_daily_tasks 30 reached; carried over", at=at))
            db.add(SopTask(task_id=f"sopE{n}", key=key, userid=s.sender, target=s.target, source=s.source,
                           day=day + timedelta(days=1), status="deferred", created_at=at, detail=script(s, at)))
        elif s.what == "card":
            db.add(Occurrence(job_key=job, occurrence_key=occ, outcome="done", at=at))
            db.add(SopTask(task_id=f"sopE{n}", key=key, userid=s.sender, target=s.target, source=s.source,
                           day=day, status="open", created_at=at, detail=script(s, at)))
        else:
            db.add(Occurrence(job_key=job, occurrence_key=occ, outcome="done", at=at))
            db.add(SopSend(key=key, target=s.target, target_type="group" if s.target.startswith("wr") else "customer",
                           source=s.source, step=s.step, sender=s.sender, material="t-welcome-default", day=day,
                           created_at=at))
            db.add(OutboxAction(idempotency_key=key, kind="wecom", payload={}, status="sent", next_attempt_at=at,
                                wecom_msgid=f"msgE{n}", created_at=at, sent_at=at))
            db.add(SopMassSend(msgid=f"msgE{n}", outbox_key=key, created_at=at, confirmed=s.confirmed, reminds=[]))
        if s.opened:
            for i in range(2):  # opened twice: one target
                db.add(RadarClick(token_id=f"tokE{n}", material_id="t-welcome-default", sender=s.sender,
                                  external_userid=None if s.target.startswith("wr") else s.target,
                                  occurrence=f"sop:{s.source}:{s.step}@{s.target}:{day.isoformat()}",
                                  at=at + (i + 1) * H))
        for i, (kind, after) in enumerate(s.events):
            db.add(CrmEvent(event_id=f"evE{n}-{i}", crm_id=f"crm-{s.target}", kind=kind, at=at + after,
                            payload={}))
    # A link of the step opened from a send that is not in the script: it is no send of the period.
    db.add(RadarClick(token_id="tokX", material_id="t-welcome-default", sender="lina", external_userid="wmE04",
                      occurrence=f"sop:{PTH}:plan@wmE04:{(today - timedelta(days=20)).isoformat()}", at=now))


def today_of(s: Stack) -> date:
    return s.clock.now().astimezone(TZ).date()


VIEWERS = [  # (grant, dept, manager, the managers whose figures it sees; None = the whole bank)
    (ADMIN, "", "", None),
    (Grant("wangqiang", Role.TEAM_LEAD, WEST_PAYROLL), "", "", TEAMS[WEST_PAYROLL]),
    (Grant("xuming", Role.TEAM_LEAD, EAST_RETAIL), "", "", TEAMS[EAST_RETAIL]),
    (ADMIN, "", "lina", {"lina"}),
    (Grant("mali", Role.BRANCH_HEAD, "杭州分行/城西支行"), WEST_PAYROLL, "", TEAMS[WEST_PAYROLL]),
]


async def test_every_figure_equals_the_script(db_url: str, tmp_path: Path) -> None:
    async with console_stack(db_url, tmp_path) as s:
        pb = await use_playbook(s)
        today = today_of(s)
        async with s.runtime.sessions() as db, db.begin():
            await seed(db, today, s.clock.now())
        async with s.runtime.sessions() as db:
            for days in (30, 7, 90):
                for grant, dept, manager, who in VIEWERS:
                    data = await sop_effect(db, grant, playbook=pb, since=today - timedelta(days=days - 1),
                                            until=today, zone=ZONE, dept=dept, manager=manager)
                    assert figures_of(data) == expect_effect(today, days, who), (days, grant, manager)
            data = await sop_effect(db, ADMIN, playbook=pb, since=today - timedelta(days=29), until=today, zone=ZONE)
            again = await sop_effect(db, ADMIN, playbook=pb, since=today - timedelta(days=29), until=today, zone=ZONE)
            assert json.dumps(data, ensure_ascii=False) == json.dumps(again, ensure_ascii=False)

            # The shape the page and the report read: SOPs by source, steps in file order, goals.
            assert [x["source"] for x in data["sops"]] == [CAL, PTH]
            assert [x["name"] for x in data["sops"]] == ["代发群效果", "理财跟进"]
            assert [[st["step"] for st in x["steps"]] for x in data["sops"]] == [STEPS[CAL], STEPS[PTH]]
            assert data["sops"][1]["steps"][0]["goal"] == {"event": "interaction.visit", "within_days": 7}
            assert data["sops"][1]["steps"][1]["goal"] is None
            assert data["period"] == {"since": (today - timedelta(days=29)).isoformat(), "until": today.isoformat(),
                                      "days": 30}
            # Spot checks of what the script means, so a wrong expectation cannot hide a wrong rule.
            plan = figures_of(data)[(PTH, "plan")]
            assert (plan["targeted"], plan["sent"], plan["converted"]) == (9, 5, 2)  # wmE01, wmE05
            # Without the playbook: the rows alone, no goals, no conversions.
            bare = await sop_effect(db, ADMIN, playbook=None, since=today - timedelta(days=29), until=today,
                                    zone=ZONE)
            assert all(st["converted"] is None for x in bare["sops"] for st in x["steps"])

            with pytest.raises(ScopeRefused):
                await sop_effect(db, Grant("xuming", Role.TEAM_LEAD, EAST_RETAIL), playbook=pb, since=today,
                                 until=today, zone=ZONE, dept=WEST_PAYROLL)
            with pytest.raises(ValueError, match="after"):
                await sop_effect(db, ADMIN, playbook=pb, since=today, until=today - timedelta(days=1), zone=ZONE)
            with pytest.raises(ValueError, match="at most"):
                await sop_effect(db, ADMIN, playbook=pb, since=today - timedelta(days=MAX_DAYS), until=today,
                                 zone=ZONE)


def _table(page: str) -> dict[tuple[str, str], dict[str, str]]:
    """(source, step) → {stage: cell text} of the page's tables ("" = the total row)."""
    out: dict[tuple[str, str], dict[str, str]] = {}
    for source, body in re.findall(r'<section class="sop" data-source="([^"]+)">(.*?)</section>', page, re.S):
        for step, cells in re.findall(r'<tr(?: class="total")? data-step="([^"]*)">(.*?)</tr>', body, re.S):
            got = dict(re.findall(r'<td data-(?:stage|reason)="(\w+)">([^<]*)</td>', cells))
            out[(unescape(source), unescape(step))] = got
    return out


def _as_cells(f: dict[str, Any]) -> dict[str, str]:
    cells = {k: str(f[k]) for k in ("targeted", "sent", "skipped_total", "delivered", "opened")}
    cells["converted"] = "—" if f["converted"] is None else str(f["converted"])
    cells.update({k: str(v) for k, v in f["skipped"].items()})
    return cells


async def test_the_page_shows_the_figures_in_the_viewers_scope(db_url: str, tmp_path: Path) -> None:
    async with console_stack(db_url, tmp_path) as s:
        await use_playbook(s)
        today = today_of(s)
        async with s.runtime.sessions() as db, db.begin():
            await seed(db, today, s.clock.now())
        for viewer, who in (("zhouhai", None), ("wangqiang", TEAMS[WEST_PAYROLL])):
            s.client.session.cookie_jar.clear()
            await sign_in(s, viewer)
            res = await s.client.get("/console/effect?days=30")
            assert res.status == 200, await res.text()
            page = await res.text()
            want = {k: _as_cells(v) for k, v in expect_effect(today, 30, who).items()}
            assert _table(page) == want, viewer
            assert page.count('class="chart funnel"') == 2
        # The team lead asks for another branch: refused; a bad period: one line.
        res = await s.client.get("/console/effect?days=30&dept=杭州分行/城东支行")
        assert res.status == 403
        res = await s.client.get("/console/effect?days=5")
        assert (res.status, await res.text()) == (400, "days must be one of 7, 30, 90\n")


async def test_the_browser_draws_a_funnel_per_sop_with_the_tables_numbers(sqlite_url: str, tmp_path: Path,
                                                                          browser: Browser) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    async with console_stack(sqlite_url, tmp_path, port=port) as s:
        await use_playbook(s)
        today = today_of(s)
        async with s.runtime.sessions() as db, db.begin():
            await seed(db, today, s.clock.now())
        want = expect_effect(today, 30, None)
        context = await browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900})
        page = await context.new_page()
        await page.goto(f"{base}/console/login")
        await page.click("#wecom-login")
        await page.get_by_role("link", name="周海（zhouhai）").click()
        await expect(page).to_have_url(f"{base}/console/")
        await page.click("header nav >> text=SOP效果")
        for source in (CAL, PTH):
            section = page.locator(f'section.sop[data-source="{source}"]')
            total = want[(source, "")]
            for stage in ("targeted", "sent", "delivered", "opened"):
                await expect(section.locator(f'tr.total td[data-stage="{stage}"]')).to_have_text(str(total[stage]))
            chart = section.locator(".chart.funnel")
            await expect(chart).to_have_attribute("data-drawn", "true")
            # The funnel's labels are the table's numbers, stage by stage.
            for label, stage in (("目标", "targeted"), ("已发送", "sent"), ("已送达", "delivered"),
                                 ("已打开", "opened"), ("已转化", "converted")):
                await expect(chart.locator("svg text", has_text=f"{label} {total[stage]}")).to_have_count(1)
        await page.screenshot(path=str(screenshots_dir(tmp_path) / "console-effect.png"), full_page=True)
        await context.close()
