"""The weekly digest on the fake clock: every team lead and branch head of the access file gets
one text card a week with their scope's figures of the last full week beside the week before —
as the scripted bank of cockpit_script.py says, computed here — and a link to their cockpit; a
run inside the quiet hours waits for their end; a second run in the week sends nothing more; a
lead who left, is not on the staff or has no department is skipped with a log line. The job
itself fires on Mondays at 09:00 in the playbook's zone."""

from __future__ import annotations

import logging
import re
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from sqlalchemy import select, update

from handlers.console.jobs import DIGEST_JOB_KEY, ConsoleDigestDue
from handlers.contacts.api import Member
from scrm.kernel.models import DueJob
from tests.handlers.console import cockpit_script as sc
from tests.handlers.console.support import console_stack
from tests.handlers.console.test_reports import as_stored, played
from tests.support.stack import Stack

ACCESS = """\
members:
  zhouhai: {role: ops_admin}
  sunhui: {role: auditor}
  mali: {role: branch_head, scope: 杭州分行/城西支行}
  wangqiang: {role: team_lead, scope: 杭州分行/城西支行/代发服务团队}
  xuming: {role: team_lead, scope: 杭州分行/城东支行/零售客户团队}
  hemin: {role: branch_head, scope: 杭州分行/城东支行}
  ghost: {role: team_lead, scope: 杭州分行/城西支行/财富管理团队}
  nodept: {role: team_lead, scope: 杭州分行/城西支行/财富管理团队}
"""
LEADS = {"mali": "杭州分行/城西支行", "wangqiang": sc.WEST_PAYROLL, "xuming": sc.EAST_RETAIL}
PUBLIC = "http://127.0.0.1:8080"
LINE = re.compile(r"^(\S+) (\S+)（前一周 (\S+)）$")


def local(day: date, hh: int, mm: int = 0) -> datetime:
    return datetime.combine(day, time(hh, mm), sc.TZ).astimezone(UTC)


def cards_to(s: Stack, userid: str) -> list[dict[str, Any]]:
    return [d.content["textcard"] for d in s.state.delivered_messages(kind="app", to=userid) if d.msgtype == "textcard"]


async def fire(s: Stack, key: str) -> None:
    """The digest event as the scheduler adds it for one fire time, handled, and due sends sent."""
    async with s.runtime.sessions() as db, db.begin():
        await s.runtime.inbox.add_internal(db, ConsoleDigestDue(at=s.clock.now()), f"{DIGEST_JOB_KEY}@{key}")
    await s.run()


async def leave_and_blank(s: Stack) -> None:
    """hemin has left the bank; nodept is on the staff without a department; ghost is not on it."""
    async with s.runtime.sessions() as db, db.begin():
        await db.execute(update(Member).where(Member.userid == "hemin").values(status="resigned"))
        db.add(Member(userid="nodept", name="无部门", department=""))


def expected_lines(w: sc.World, scope: str, cur: set[date], prev: set[date]) -> dict[str, tuple[str, str]]:
    users = {u for u, (_n, d) in sc.DIRECTORY.items() if d == scope or d.startswith(scope + "/")}
    f, p = sc.figures(w, cur, users), sc.figures(w, prev, users)

    def rate(v: float | None) -> str:
        return "—" if v is None else f"{v * 100:.1f}%"

    return {"新增客户": (str(f["added"]), str(p["added"])), "流失客户": (str(f["lost"]), str(p["lost"])),
            "净增": (str(f["net"]), str(p["net"])),
            "SOP触达客户": (str(f["reach_customers"]), str(p["reach_customers"])),
            "任务完成/下发": (f"{f['tasks_done']}/{f['tasks_issued']}", f"{p['tasks_done']}/{p['tasks_issued']}"),
            "雷达打开率": (rate(f["radar_open_rate"]), rate(p["radar_open_rate"]))}


async def test_one_card_a_week_with_the_scripts_figures_after_quiet_hours(
        db_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="handlers.console.digest")
    async with console_stack(db_url, tmp_path, access=ACCESS, console={"rollup_cron": ""}) as s:
        await leave_and_blank(s)
        events = await played(s)
        w = as_stored(events)
        assert sc.TODAY.weekday() == 3  # a Thursday: the last full week is Monday to Sunday before it
        monday = sc.TODAY - timedelta(days=sc.TODAY.weekday() + 7)
        cur = {monday + timedelta(days=i) for i in range(7)}
        prev = {d - timedelta(days=7) for d in cur}

        # 22:00 is inside the quiet hours (21:00-08:30): queued, nothing delivered.
        s.clock.set(local(sc.TODAY, 22))
        await fire(s, "thursday")
        assert not any(cards_to(s, u) for u in LEADS)
        rows = [r for r in await s.outbox_rows("message/send") if r.idempotency_key.startswith("console:digest:")]
        assert sorted(r.payload["body"]["touser"] for r in rows) == sorted(LEADS)
        assert {r.next_attempt_at for r in rows} == {local(sc.TODAY + timedelta(days=1), 8, 30)}
        for who in ("hemin", "ghost", "nodept"):
            assert any(who in m and "skipped" in m for m in caplog.messages), who

        # At 08:30 they go: one card each, with the script's figures and the cockpit's link.
        s.clock.set(local(sc.TODAY + timedelta(days=1), 8, 31))
        await s.send()
        last_sunday = monday + timedelta(days=6)
        for userid, scope in LEADS.items():
            [card] = cards_to(s, userid)
            assert card["title"] == f"上周经营周报 {monday:%m.%d}–{last_sunday:%m.%d}"
            assert card["url"] == f"{PUBLIC}/console/cockpit?days=7&dept={quote(scope, safe='')}"
            head, *lines = card["description"].split("\n")
            assert head == scope and len(card["description"].encode()) <= 512
            got = {m.group(1): (m.group(2), m.group(3)) for m in map(LINE.match, lines) if m}
            assert len(got) == len(lines) == 6, lines
            assert got == expected_lines(w, scope, cur, prev), userid
        assert expected_lines(w, sc.WEST_PAYROLL, cur, prev)["新增客户"][0] != "0"
        for other in ("zhouhai", "sunhui", "hemin"):
            assert not cards_to(s, other)

        # Another run in the same week (a replay, a second instance, a changed cron): nothing more.
        s.clock.set(local(sc.TODAY + timedelta(days=1), 10))
        await fire(s, "friday")
        await s.send()
        assert [len(cards_to(s, u)) for u in LEADS] == [1, 1, 1]
        assert len([r for r in await s.outbox_rows("message/send")
                    if r.idempotency_key.startswith("console:digest:")]) == 3


async def test_the_job_runs_on_mondays_at_nine(sqlite_url: str, tmp_path: Path) -> None:
    async with console_stack(sqlite_url, tmp_path, access=ACCESS) as s:
        start = s.clock.now().astimezone(sc.TZ)
        async with s.runtime.sessions() as db:
            job = await db.scalar(select(DueJob).where(DueJob.job_key == DIGEST_JOB_KEY))
        assert job is not None and job.enabled and job.kind == "console.digest"
        # The first Monday 09:00 (Shanghai) at or after the start, then the one a week later.
        first = start.date() + timedelta(days=(-start.weekday()) % 7)
        if local(first, 9) < s.clock.now():
            first += timedelta(days=7)
        await s.run_until(local(first + timedelta(days=7), 9, 1))
        for userid in LEADS:
            got = [(c["title"]) for c in cards_to(s, userid)]
            weeks = [first - timedelta(days=7), first]
            assert got == [f"上周经营周报 {m:%m.%d}–{m + timedelta(days=6):%m.%d}" for m in weeks], userid
        at = [datetime.fromtimestamp(d.at, sc.TZ) for d in s.state.delivered_messages(kind="app", to="mali")
              if d.msgtype == "textcard"]
        assert [(a.weekday(), a.hour) for a in at] == [(0, 9), (0, 9)]
