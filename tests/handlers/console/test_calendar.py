"""The console's SOP calendar is what the planner will do: a fixture calendar (a one-off step, a
1:1 step to group members, a task card, a weekly post whose material expires mid-window, a
monthly "payday + 1 workday" post) over three payroll groups of two teams, with a test holiday,
is planned for 30 days by the ``console.outlook`` job and stored; every count of the page, of
the stored outlook read for a scope and of the planner's own plan equals what this test works
out by hand from the fixture itself, for the whole bank and for each team lead. The job plans
once per day and playbook version, again the next night and after a reload; before it has ever
run, the page says so."""

from __future__ import annotations

import contextlib
import os
import re
from collections import Counter, defaultdict
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, time, timedelta
from html import unescape
from pathlib import Path
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from playwright.async_api import Browser, expect
from sqlalchemy import select

from handlers.console import outlook
from handlers.console.access import Grant, Role
from handlers.console.calendar import PreviewCache, calendar_view, plan_bank
from handlers.console.jobs import OUTLOOK_JOB_KEY, OUTLOOK_NOW_JOB_KEY, ConsoleOutlookDue
from handlers.console.models import ConsoleAudit, ConsoleOutlook, ConsoleOutlookRun
from handlers.console.scope import resolve
from handlers.contacts.api import Customer, Follow
from handlers.crm.api import CrmGroup
from handlers.groups.api import GroupChat, GroupMember
from handlers.staff.directory import apply_snapshot
from handlers.staff.sync import read_directory
from scrm.kernel.models import DueJob
from tests.handlers.console.support import ACCESS, sign_in
from tests.support.playbooks import APPROVED, SOP_MATERIALS, write_shipped_playbook
from tests.support.stack import Stack, stack
from tests.support.web import SCREENSHOTS_ENV, free_port, screenshots_dir

TZ = ZoneInfo("Asia/Shanghai")
TODAY = date(2026, 11, 2)  # the fake clock's first day (09:00 in Shanghai), a Monday
WINDOW = [TODAY + timedelta(days=i) for i in range(30)]
HOLIDAY = date(2026, 11, 18)  # a Wednesday, declared a holiday below
EXPIRES = date(2026, 11, 20)
WEST, EAST = "杭州分行/城西支行/代发服务团队", "杭州分行/城东支行/零售客户团队"
SOURCE = "calendar:test-cal"

CALENDAR = """\
calendar: test-cal
name: 测试日历
group_type: payroll
on_holiday: skip
steps:
  - {id: d10, day: 10, at: "10:00", send: t-text}
  - {id: m12, day: 12, at: "12:10", send: t-text, to: members}
  - {id: t20, day: 20, at: "10:00", task: t-task}
recurring:
  - {id: weekly, every: week, on: wed, at: "10:00", send: cal-weekly}
  - {id: salary, every: month, on: "payday + 1 workday", at: "12:10", send: t-link}
"""
MATERIALS = SOP_MATERIALS + f"""\
- id: cal-weekly
  type: text
  channels: [group]
  text: "{{manager.name}}的每周提示：{{date.today}}营业时间不变。"
  {APPROVED}
  valid_until: {EXPIRES.isoformat()}
"""
#: (chat_id, owner, owner's team, created (local date), CRM payday or None, member customers)
GROUPS = [("wrA", "zhangwei", WEST, date(2026, 10, 30), None, ["c1", "c2"]),
          ("wrB", "lina", WEST, date(2026, 10, 28), None, []),
          ("wrC", "gaofei", EAST, date(2026, 10, 28), 17, ["c3"])]
PAYROLL_DEFAULT_PAYDAY = 10  # sop/groups.yaml, payroll


def calendar_playbook(root: Path) -> tuple[Path, Path]:
    holidays = {"国庆节: [2026-10-01, 2026-10-07]":
                f"国庆节: [2026-10-01, 2026-10-07]\n      测试假日: {HOLIDAY.isoformat()}"}
    return write_shipped_playbook(root, calendars={"test-cal": CALENDAR}, materials=MATERIALS,
                                  edits={"sop/holidays.yaml": holidays})


@contextlib.asynccontextmanager
async def console_on(db_url: str, root: Path, playbook: tuple[Path, Path], *,
                     port: int | None = None) -> AsyncIterator[Stack]:
    """The console on the demo bank (directory synced, the access file of ``support``) running
    ``playbook`` (support's ``console_stack`` runs the small lifecycle playbook, with no calendar)."""
    sections: dict[str, Any] = {"server": {"public_url": f"http://127.0.0.1:{port or 8080}"}}
    async with stack(db_url, root, sections=sections, port=port, playbook=playbook) as s:
        (playbook[0] / "console.yaml").write_text(ACCESS, encoding="utf-8")
        snapshot = await read_directory(s.runtime.wecom)
        async with s.runtime.sessions() as db, db.begin():
            await apply_snapshot(db, snapshot, s.clock.now())
        yield s


@contextlib.asynccontextmanager
async def calendar_stack(db_url: str, root: Path, *, port: int | None = None,
                         planned: bool = True) -> AsyncIterator[Stack]:
    """:func:`console_on` the fixture calendar, with the fixture's groups; ``planned``: the
    scheduler has run the outlook job the start left due (as a running service does at once)."""
    async with console_on(db_url, root, calendar_playbook(root / "pb"), port=port) as s:
        await seed_groups(s)
        if planned:
            await s.step()
        yield s


async def seed_groups(s: Stack) -> None:
    async with s.runtime.sessions() as db, db.begin():
        for chat, owner, _, created, payday, members in GROUPS:
            at = datetime.combine(created, time(15, 0), TZ).astimezone(UTC)
            db.add(GroupChat(chat_id=chat, name=f"代发群{chat}", owner=owner, group_type="payroll", created_at=at,
                             updated_at=at))
            if payday:
                db.add(CrmGroup(chat_id=chat, employer="某单位", payday=payday, updated_at=at))
            await db.flush()
            db.add(GroupMember(chat_id=chat, member_id=owner, type=1, joined_at=at))
            for ext in members:
                db.add(Customer(external_userid=ext, name=f"客户{ext}", updated_at=at))
                db.add(Follow(userid=owner, external_userid=ext, created_at=at - timedelta(days=100)))
                db.add(GroupMember(chat_id=chat, member_id=ext, type=2, joined_at=at))


# -- the expectation, from the fixture alone ------------------------------------------------------

def workday(d: date) -> bool:
    return d.weekday() < 5 and d != HOLIDAY  # no official 2026 holiday or make-up day in the window


def payday_plus_one_workday(month: date, payday: int) -> date:
    d = month.replace(day=payday) + timedelta(days=1)
    while not workday(d):
        d += timedelta(days=1)
    return d


def expected(team: str | None = None) -> dict[str, dict[str, dict[str, Any]]]:
    """day → step → {"at", "group", "private", "task", "skips": {kind: n}} for the groups of ``team``."""
    out: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)

    def add(day: date, step: str, at: str, what: str, n: int = 1) -> None:
        row = out[day.isoformat()].setdefault(step, {"at": at, "group": 0, "private": 0, "task": 0,
                                                     "skips": Counter()})
        if what.startswith("skip:"):
            row["skips"][what[5:]] += n
        else:
            row[what] += n

    for _, _, owner_team, created, payday, members in GROUPS:
        if team is not None and owner_team != team:
            continue
        for day in WINDOW:
            if day == created + timedelta(days=10):
                add(day, "d10", "10:00", "group" if workday(day) else "skip:holiday")
            if day == created + timedelta(days=12) and members:
                add(day, "m12", "12:10", "private" if workday(day) else "skip:holiday", len(members))
            if day == created + timedelta(days=20):
                add(day, "t20", "10:00", "task" if workday(day) else "skip:holiday")
            if day.weekday() == 2:
                add(day, "weekly", "10:00", "skip:holiday" if not workday(day) else
                    "skip:material_expired" if day > EXPIRES else "group")
            if day == payday_plus_one_workday(day.replace(day=1), payday or PAYROLL_DEFAULT_PAYDAY):
                add(day, "salary", "12:10", "group")
    return {d: {k: {**v, "skips": dict(v["skips"])} for k, v in steps.items()} for d, steps in out.items()}


def projected(view: dict[str, Any]) -> dict[str, dict[str, dict[str, Any]]]:
    """The calendar function's answer in the expectation's shape (days without steps left out)."""
    return {d["day"]: {s["step"]: {"at": s["at"], "group": s["group"], "private": s["private"], "task": s["task"],
                                   "skips": {k["kind"]: k["count"] for k in s["skips"]}}
                       for s in d["steps"]}
            for d in view["calendar"] if d["steps"]}


def test_the_fixture_exercises_every_case() -> None:
    whole = expected()
    kinds: Counter[str] = Counter()
    for steps in whole.values():
        for step in steps.values():
            kinds.update(step["skips"])
    assert kinds["holiday"] >= 2 and kinds["material_expired"] >= 3, kinds
    assert all(any(s[k] for steps in whole.values() for s in steps.values()) for k in ("group", "private", "task"))
    assert "2026-11-19" in whole and whole["2026-11-19"]["salary"]["group"] == 1  # payday 17 → past the holiday
    assert expected(EAST) != whole and expected(WEST) != whole and expected(EAST) != expected(WEST)


GRANTS = ((Grant("zhouhai", Role.OPS_ADMIN), None), (Grant("wangqiang", Role.TEAM_LEAD, WEST), WEST),
          (Grant("xuming", Role.TEAM_LEAD, EAST), EAST))


async def test_the_calendar_is_what_the_planner_will_do(db_url: str, tmp_path: Path) -> None:
    async with calendar_stack(db_url, tmp_path) as s:
        pb = s.runtime.playbook.current
        async with s.runtime.sessions() as db:
            run = await outlook.latest(db)
            assert run is not None and (run.start, run.days) == (TODAY, 30)
            assert (run.version, run.computed_at) == (s.runtime.playbook.version, s.clock.now())
            plan = await plan_bank(db, pb, TODAY, 30)
            shared = PreviewCache()  # the page's: previews made for one scope serve the next
            for grant, team in GRANTS:
                scope = await resolve(db, grant)
                stored = calendar_view(await outlook.read(db, run, scope, 30), pb, scope)
                view = calendar_view(plan, pb, scope)
                assert projected(stored) == expected(team), grant
                assert stored == view, grant  # every figure, reason and preview as the planner's own plan
                assert calendar_view(await outlook.read(db, run, scope, 30), pb, scope,
                                     previews=shared.of(s.runtime.playbook.version)) == view, grant
                assert [d["day"] for d in view["calendar"]] == [d.isoformat() for d in WINDOW]
            assert shared.of(s.runtime.playbook.version)  # kept for the version
            assert shared.of("another version") == {}  # a reload starts afresh
            whole = await resolve(db, Grant("zhouhai", Role.OPS_ADMIN))
            week = calendar_view(await outlook.read(db, run, whole, 7), pb, whole, 7)
            assert week == calendar_view(plan, pb, whole, 7)
        assert projected(week) == {d: v for d, v in expected().items() if d < (TODAY + timedelta(days=7)).isoformat()}
        # The weekly post as the group will read it on a day it goes: that day's date, a sample manager name.
        day = next(d for d in view["calendar"] if d["day"] == "2026-11-04")
        weekly = next(st for st in day["steps"] if st["step"] == "weekly")
        text = weekly["previews"][0]["text"]
        assert text == "李娜的每周提示：11月4日营业时间不变。", text
        assert [x["name"] for x in weekly["previews"][0]["samples"]] == ["manager.name"]
        assert weekly["materials"] == ["cal-weekly"]


STEP = (r'<div class="step" data-source="[^"]+" data-step="([^"]+)" data-at="([^"]+)" data-group="(\d+)" '
        r'data-private="(\d+)" data-task="(\d+)" data-skipped="(\d+)">(.*?)(?=<div class="step" |$)')


def page_rows(page: str) -> dict[str, dict[str, dict[str, Any]]]:
    """The page's steps: day → step → counts, as the markup carries them (and the step's markup)."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for day, body in re.findall(r'<section class="day[^"]*" id="day-[^"]+" data-day="([^"]+)">(.*?)</section>', page,
                                re.S):
        for step, at, g, p, t, sk, inner in re.findall(STEP, body, re.S):
            out.setdefault(day, {})[step] = {"at": at, "group": int(g), "private": int(p), "task": int(t),
                                             "skipped": int(sk), "inner": inner}
    return out


async def test_the_page_shows_the_calendar_within_the_viewers_scope(db_url: str, tmp_path: Path) -> None:
    async with calendar_stack(db_url, tmp_path) as s:
        await sign_in(s, "xuming")  # team lead of the east retail team: gaofei's group only
        resp = await s.client.get("/console/calendar")
        assert resp.status == 200, await resp.text()
        page = await resp.text()
        rows = page_rows(page)
        want = expected(EAST)
        assert {d: {k: (v["at"], v["group"], v["private"], v["task"], v["skipped"]) for k, v in steps.items()}
                for d, steps in rows.items()} == {
            d: {k: (v["at"], v["group"], v["private"], v["task"], sum(v["skips"].values())) for k, v in steps.items()}
            for d, steps in want.items()}
        expired = rows["2026-11-25"]["weekly"]["inner"]
        assert "将跳过：素材已过期 × 1" in unescape(expired)
        assert len(re.findall(r'<section class="day', page)) == 30
        week = await (await s.client.get("/console/calendar?days=7")).text()
        assert len(re.findall(r'<section class="day', week)) == 7
        for bad in ("days=5", "days=x", f"dept={quote(EAST + '/没有这个组')}"):
            r = await s.client.get(f"/console/calendar?{bad}")
            assert r.status == 400, bad
            text = await r.text()
            assert len(text.splitlines()) == 1 and "Traceback" not in text, text
        refused = await s.client.get(f"/console/calendar?dept={quote(WEST)}")
        assert refused.status == 403
        async with s.runtime.sessions() as db:
            rows_audit = (await db.execute(select(ConsoleAudit.actor, ConsoleAudit.action, ConsoleAudit.target)
                                           .where(ConsoleAudit.target.like("/console/calendar%"))
                                           .order_by(ConsoleAudit.id))).all()
        assert [tuple(r) for r in rows_audit] == [("xuming", "view", "/console/calendar"),
                                                   ("xuming", "view", "/console/calendar?days=7"),
                                                   ("xuming", "forbidden", "/console/calendar")]


async def runs(s: Stack) -> list[tuple[int, date, str, datetime]]:
    """The stored outlooks: (id, first day, playbook version, computed at)."""
    async with s.runtime.sessions() as db:
        rows = await db.execute(select(ConsoleOutlookRun.id, ConsoleOutlookRun.start, ConsoleOutlookRun.version,
                                       ConsoleOutlookRun.computed_at).order_by(ConsoleOutlookRun.id))
        return [tuple(r) for r in rows.all()]  # type: ignore[misc]


async def stored_rows(s: Stack) -> int:
    async with s.runtime.sessions() as db:
        return len((await db.execute(select(ConsoleOutlook.run_id))).all())


async def viewed(s: Stack) -> str:
    """The whole bank's calendar page now (signed in again: the clock may have passed the idle limit)."""
    await sign_in(s, "zhouhai")
    return await (await s.client.get("/console/calendar")).text()


async def test_the_job_plans_once_a_day_and_again_after_a_reload(sqlite_url: str, tmp_path: Path) -> None:
    async with calendar_stack(sqlite_url, tmp_path) as s:
        version, started = s.runtime.playbook.version, s.clock.now()
        [(first, start, v, at)] = await runs(s)
        assert (start, v, at) == (TODAY, version, started)
        rows = await stored_rows(s)
        before = page_rows(await viewed(s))
        assert before["2026-11-09"]["d10"]["group"] == 1  # wrA, created 10-30

        # A new group (its day-10 post is on 11-11); the same day and playbook planned again — a
        # replayed event, a second instance, a restart — changes nothing: the stored plan stays.
        async with s.runtime.sessions() as db, db.begin():
            at = datetime.combine(date(2026, 11, 1), time(15, 0), TZ).astimezone(UTC)
            db.add(GroupChat(chat_id="wrD", name="代发群D", owner="zhangwei", group_type="payroll", created_at=at,
                             updated_at=at))
        s.clock.advance(3600)
        async with s.runtime.sessions() as db, db.begin():
            await s.runtime.inbox.add_internal(db, ConsoleOutlookDue(at=s.clock.now(), version=version), "replay")
        await s.runtime.register_jobs()  # what a restart does: the one-off job due again, now
        await s.step()
        assert await runs(s) == [(first, TODAY, version, started)] and await stored_rows(s) == rows
        assert page_rows(await viewed(s)) == before

        # The nightly job (01:00 by default) plans the next day's 30 days, with the new group.
        tomorrow = TODAY + timedelta(days=1)
        await s.run_until(datetime.combine(tomorrow, time(1, 30), TZ).astimezone(UTC))
        [(second, start, v, at)] = await runs(s)  # the older run is gone
        assert second != first and (start, v) == (tomorrow, version)
        assert at == datetime.combine(tomorrow, time(1, 1), TZ).astimezone(UTC)  # run_until's minute late
        after = page_rows(await viewed(s))
        assert after["2026-11-11"]["d10"]["group"] == before["2026-11-11"].get("d10", {"group": 0})["group"] + 1
        assert "2026-11-02" not in after and "2026-12-02" in after

        # A reload with a changed step: planned again at once, under the new version.
        cal = tmp_path / "pb" / "sop" / "calendars" / "test-cal.yaml"
        cal.write_text(cal.read_text(encoding="utf-8").replace('id: d10, day: 10, at: "10:00"',
                                                               'id: d10, day: 10, at: "10:30"'), encoding="utf-8")
        s.clock.advance(3600)
        assert (await s.runtime.reload_playbook()).applied
        assert s.runtime.playbook.version != version
        stale = await viewed(s)
        assert 'id="stale"' in stale and "剧本已更新" in stale  # the previous plan, said to be old
        await s.step()
        [(third, start, v, at)] = await runs(s)
        assert third != second and (start, v, at) == (tomorrow, s.runtime.playbook.version, s.clock.now())
        reloaded = page_rows(await viewed(s))
        assert reloaded["2026-11-11"]["d10"]["at"] == "10:30"
        assert {k: v["group"] for k, v in reloaded["2026-11-11"].items()} == {
            k: v["group"] for k, v in after["2026-11-11"].items()}


async def test_before_the_first_plan_the_page_says_when_it_comes(sqlite_url: str, tmp_path: Path) -> None:
    """The first start: the job is due at once; the page never plans itself, it says so."""
    async with calendar_stack(sqlite_url, tmp_path, planned=False) as s:
        await sign_in(s, "zhouhai")
        async with s.runtime.sessions() as db:
            due = await db.scalar(select(DueJob.next_run_at).where(DueJob.job_key == OUTLOOK_NOW_JOB_KEY))
            nightly = await db.scalar(select(DueJob.next_run_at).where(DueJob.job_key == OUTLOOK_JOB_KEY))
        assert due == s.clock.now()
        assert nightly == datetime.combine(TODAY + timedelta(days=1), time(1, 0), TZ).astimezone(UTC)
        resp = await s.client.get("/console/calendar")
        assert resp.status == 200
        page = await resp.text()
        assert 'id="computing"' in page and "日历尚未计算" in page and page_rows(page) == {}
        assert f"下一次计划中的计算：{s.clock.now().astimezone(TZ):%Y-%m-%d %H:%M}" in page
        assert await runs(s) == []  # the view planned nothing
        await s.step()
        page = await (await s.client.get("/console/calendar")).text()
        assert 'id="computing"' not in page and page_rows(page) != {}
        assert f"计算于 {s.clock.now().astimezone(TZ):%Y-%m-%d %H:%M}" in page


async def test_both_pages_in_a_browser(sqlite_url: str, tmp_path: Path, browser: Browser) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    shots = os.environ.get(SCREENSHOTS_ENV) and screenshots_dir(tmp_path)
    async with calendar_stack(sqlite_url, tmp_path, port=port):
        context = await browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900})
        page = await context.new_page()
        await page.goto(f"{base}/console/calendar")
        await page.click("#wecom-login")
        await page.get_by_role("link", name="周海（zhouhai）").click()  # the sandbox's stand-in for the QR scan
        await page.goto(f"{base}/console/calendar")
        want = expected()
        await expect(page.locator('[data-total="group"] b')).to_have_text(
            str(sum(st["group"] for steps in want.values() for st in steps.values())))
        weekly = page.locator('#day-2026-11-04 .step[data-step="weekly"]')
        await expect(weekly).to_have_attribute("data-group", str(want["2026-11-04"]["weekly"]["group"]))
        preview = weekly.locator(".preview .bubble")
        await expect(preview).to_be_hidden()  # folded until asked for
        await weekly.locator("summary").click()
        await expect(preview).to_have_text("李娜的每周提示：11月4日营业时间不变。")
        await expect(page.locator('#day-2026-11-25 .step[data-step="weekly"] .skip')).to_have_text(
            "将跳过：素材已过期 × 3")
        if shots:
            await page.screenshot(path=str(shots / "console-calendar.png"), full_page=True)

        await page.click("header nav >> text=素材")
        await expect(page.locator('#materials tr[data-material="cal-weekly"] td').nth(7)).to_have_text("已审批")
        await expect(page.locator('#materials tr[data-material="t-mini"]')).to_contain_text("合规部-测试")
        if shots:
            await page.screenshot(path=str(shots / "console-materials.png"), full_page=True)
        await page.locator('#materials a[href="/console/materials/t-mini"]').click()
        await expect(page.locator('.preview [data-role="miniprogram"] b')).to_have_text("测试福利")
        width = await page.locator('.preview [data-role="miniprogram"] img').evaluate(
            "img => img.complete ? img.naturalWidth : new Promise(r => img.onload = () => r(img.naturalWidth))")
        assert width > 0  # the cover came from materials/covers/topup.png
        if shots:
            await page.screenshot(path=str(shots / "console-material.png"), full_page=True)
        await context.close()
