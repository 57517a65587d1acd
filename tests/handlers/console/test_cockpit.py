"""The cockpit's figures are exact: a scripted bank (cockpit_script.py: three sub-branches, ten
managers, 5,000 customers, 94 days) played day by day on the fake clock with the nightly roll-up
after each day; every figure of the cockpit for 7, 30 and 90 days — the function behind the page
and the report for the bank, the branch, each sub-branch, team and some managers, the page's
tables, and ``scrm report cockpit`` — equals what the script itself says, on SQLite and
PostgreSQL; each stored day equals a rebuild from the raw rows; two reports are byte-identical."""

from __future__ import annotations

import json
import re
from datetime import date, timedelta
from html import unescape
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from sqlalchemy import select

from handlers.console.access import Grant, Role
from handlers.console.cockpit import cockpit
from handlers.console.models import ConsoleAudit
from handlers.console.report import cmd_report, parse
from handlers.console.rollup import compute_day, due_days, roll_up_due, stored_rows
from handlers.contacts.api import Follow, hand_over_follow
from tests.handlers.console import cockpit_script as sc
from tests.handlers.console.support import console_stack, sign_in
from tests.support.stack import Stack

ZONE = "Asia/Shanghai"
ADMIN = Grant("zhouhai", Role.OPS_ADMIN)
#: (days, dept, manager): every period for the bank, the branch, each sub-branch and each team;
#: a few managers.
VIEWS = [(days, dept, "") for days in (7, 30, 90) for dept in sc.DEPARTMENTS] + [
    (30, "", "gaofei"), (90, "", "lina"), (7, "", "zhaolei"), (90, "", "fengjie")]


async def played(s: Stack) -> list[sc.Ev]:
    assert s.clock.now().astimezone(sc.TZ).date() == sc.DAY0
    await sc.open_north_branch(s.state, s.runtime.sessions)
    events = sc.script()
    assert len({e.data["ext"] for e in events if e.kind == "follow_add"}) == sc.CUSTOMERS

    async def nightly(today: date) -> None:  # what the console.rollup job runs (jobs.on_rollup)
        async with s.runtime.sessions() as db, db.begin():
            await roll_up_due(db, today, ZONE, s.clock.now(), 181)

    await sc.play(events, s.runtime.sessions, s.clock, nightly)
    return events


def _show(name: str, v: Any) -> str:
    """How the page writes a figure (rates as percentages, the median in hours and minutes)."""
    if v is None:
        return "—"
    if name == "radar_open_rate":
        return f"{v * 100:.1f}%"
    if name == "tasks_median_done_s":
        m = round(v / 60)
        return f"{m // 60}小时{m % 60}分" if m >= 60 else f"{m}分钟"
    return str(v)


def _page_figures(page: str) -> dict[str, tuple[str, str]]:
    rows = re.findall(r'<tr data-figure="(\w+)"><td>[^<]*</td><td data-period="current">([^<]*)</td>'
                      r'<td data-period="previous">([^<]*)</td>', page)
    return {name: (unescape(cur), unescape(prev)) for name, cur, prev in rows}


async def test_every_figure_equals_the_script(db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    async with console_stack(db_url, tmp_path) as s:
        events = await played(s)

        # The function behind the page and the report, in every kind of scope.
        async with s.runtime.sessions() as db:
            for days, dept, manager in VIEWS:
                got = await cockpit(db, ADMIN, days=days, today=sc.TODAY, now=s.clock.now(), zone=ZONE, dept=dept,
                                    manager=manager)
                assert got == sc.expect(events, days=days, dept=dept, manager=manager), (days, dept, manager)
            # A grant's own view is its scope's (a team lead, a branch head of the third sub-branch).
            for grant, days in ((Grant("xuming", Role.TEAM_LEAD, sc.EAST_RETAIL), 30),
                                (Grant("shenbo", Role.BRANCH_HEAD, sc.NORTH), 90)):
                own = await cockpit(db, grant, days=days, today=sc.TODAY, now=s.clock.now(), zone=ZONE)
                assert own == sc.expect(events, days=days, dept=grant.scope), grant
        whole = sc.expect(events, days=30)
        f = whole["figures"]
        # The script exercises every figure (nothing passes by being zero on both sides).
        assert all(f[k]["current"] for k in f if k not in ("group_net",)), f
        assert all(x["current"] for x in whole["skips"]), whole["skips"]
        weeks = sc.expect(events, days=90)["retention"]
        assert any(w["d30"] for w in weeks) and any(w["d7"] and w["d30"] is None for w in weeks)
        assert any(w["d1"] is None for w in weeks) and any((w["d7"]["rate"] or 1) < 1 for w in weeks if w["d7"])

        # The page's tables show the same numbers.
        await sign_in(s, "zhouhai")
        for days, dept, manager in ((30, "", ""), (7, sc.WEST_PAYROLL, ""), (90, sc.NORTH, ""), (90, "", "qianyun")):
            url = (f"/console/cockpit?days={days}" + (f"&dept={quote(dept)}" if dept else "")
                   + (f"&manager={manager}" if manager else ""))
            resp = await s.client.get(url)
            assert resp.status == 200, await resp.text()
            page = await resp.text()
            want = sc.expect(events, days=days, dept=dept, manager=manager)
            assert _page_figures(page) == {k: (_show(k, v["current"]), _show(k, v["previous"]))
                                           for k, v in want["figures"].items()}
            users = [u for u in re.findall(r'<tr data-userid="([^"]+)">', page)]
            assert users == [m["userid"] for m in want["managers"]]

        # The report: the same figures, byte-identical twice.
        args = parse(["cockpit", "--days", "30", "--json"])
        outs = []
        for _ in range(2):
            assert await cmd_report(args, s.settings, s.clock) == 0
            outs.append(capsys.readouterr().out)
        assert outs[0] == outs[1]
        assert json.loads(outs[0]) == whole
        for dept in ("", sc.NORTH):
            argv, outs = ["cockpit", "--days", "90", *(["--dept", dept] if dept else []), "--json"], []
            for _ in range(2):
                assert await cmd_report(parse(argv), s.settings, s.clock) == 0
                outs.append(capsys.readouterr().out)
            assert outs[0] == outs[1], argv
            assert json.loads(outs[0]) == sc.expect(events, days=90, dept=dept), argv
        args = parse(["cockpit", "--days", "7", "--dept", sc.EAST_RETAIL, "--csv"])
        assert await cmd_report(args, s.settings, s.clock) == 0
        csv_out = capsys.readouterr().out
        added = sc.expect(events, days=7, dept=sc.EAST_RETAIL)["figures"]["added"]
        assert f"figures,,added,{added['current']},{added['previous']}\n" in csv_out

        # Tonight's roll-up stores today and settles again the days whose cards changed today:
        # then each stored day is what a rebuild from the raw rows gives, weeks of changes later.
        tomorrow = sc.TODAY + timedelta(days=1)
        s.clock.set(sc.local_at(tomorrow, 20 * 60))
        async with s.runtime.sessions() as db, db.begin():
            await roll_up_due(db, tomorrow, ZONE, s.clock.now(), 181)
        async with s.runtime.sessions() as db:
            for day in sc.span(sc.DAY0, sc.TODAY):
                assert (await compute_day(db, day, ZONE)).values == await stored_rows(db, day), day
            # Only days with cards still open or escalated are due again the next night.
            unsettled = {c["day"] for c in sc.world(events).cards.values() if c["status"] in ("open", "escalated")}
            assert set(await due_days(db, tomorrow, 181)) == unsettled


async def test_drill_down_is_kept_inside_the_grant(db_url: str, tmp_path: Path) -> None:
    async with console_stack(db_url, tmp_path) as s:
        await sign_in(s, "xuming")  # team lead of 杭州分行/城东支行/零售客户团队
        own = await s.client.get("/console/cockpit?days=7")
        assert own.status == 200
        assert sc.EAST_RETAIL in await own.text()
        for query in (f"dept={quote('杭州分行/城西支行')}", f"dept={quote('杭州分行')}", "manager=zhangwei"):
            resp = await s.client.get(f"/console/cockpit?{query}")
            assert resp.status == 403, query
        assert (await s.client.get("/console/cockpit?manager=gaofei")).status == 200
        for bad in ("days=5", "days=x", f"dept={quote(sc.EAST_RETAIL + '/没有这个组')}", "manager=nobody"):
            resp = await s.client.get(f"/console/cockpit?{bad}")
            assert resp.status == 400, bad
            text = await resp.text()
            assert "Traceback" not in text and len(text.splitlines()) == 1, text
        async with s.runtime.sessions() as db:
            refused = (await db.scalars(select(ConsoleAudit.target).where(ConsoleAudit.action == "forbidden"))).all()
        assert refused == ["/console/cockpit"] * 3


async def test_the_nightly_job_rolls_up_through_the_scheduler(sqlite_url: str, tmp_path: Path) -> None:
    async with console_stack(sqlite_url, tmp_path) as s:
        async with s.runtime.sessions() as db:
            assert await stored_rows(db, sc.DAY0) == {}
        events = [e for e in sc.script() if sc.local_day(e.at) == sc.DAY0]
        async with s.runtime.sessions() as db, db.begin():
            await sc.apply_events(db, events)
        await s.run_until(sc.local_at(sc.DAY0.fromordinal(sc.DAY0.toordinal() + 1), 3600))
        async with s.runtime.sessions() as db:
            stored = await stored_rows(db, sc.DAY0)
            assert stored and stored == (await compute_day(db, sc.DAY0, ZONE)).values
        added = sum(v for (_u, m, _k), v in stored.items() if m == "added")
        assert added == sum(1 for e in events if e.kind == "follow_add")


async def test_a_handover_is_not_growth_and_keeps_the_customer_retained(db_url: str, tmp_path: Path) -> None:
    """Succession moves a relation (the old one ``transferred``, the new one assigned, add_way
    202): the day counts no new contact for the new manager, and the old relation's cohort keeps
    the customer as retained."""
    async with console_stack(db_url, tmp_path) as s:
        now = s.clock.now()
        day = now.astimezone(sc.TZ).date()
        async with s.runtime.sessions() as db, db.begin():
            db.add(Follow(userid="zhangwei", external_userid="wmKEPT", created_at=now - timedelta(days=1),
                          status="active", status_at=now - timedelta(days=1)))
            await db.flush()
            await hand_over_follow(db, "wmKEPT", "zhangwei", "lina", now, "离职继承")
        async with s.runtime.sessions() as db:
            figures = (await compute_day(db, day, ZONE, until=now + timedelta(seconds=1))).values
        assert not [k for k in figures if k[1] == "added"]  # lina's relation is not a new contact
        assert figures.get(("zhangwei", "retained", "d1")) == 1
