"""``scrm report NAME``: over the scripted bank of cockpit_script.py (94 days, 5,000 customers, played on the fake
clock with the nightly roll-up), every row of ``--by branch|team|manager`` and every figure of an
explicit period equals what the script itself says (computed here, none of the code under test);
two runs print the same bytes; bad input is one line and exit 2."""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from handlers.console.access import Grant, Role
from handlers.console.report import cmd_report, parse
from handlers.console.reports import BadAsk, scoped
from handlers.console.rollup import roll_up_due
from scrm.cli import main
from scrm.cli_support import UserError
from tests.handlers.console import cockpit_script as sc
from tests.handlers.console.support import console_stack, sign_in
from tests.support.stack import Stack

ZONE = "Asia/Shanghai"
LEVELS = {"branch": 2, "team": 3}


async def played(s: Stack) -> list[sc.Ev]:
    await sc.open_north_branch(s.state, s.runtime.sessions)
    events = sc.script()

    async def nightly(today: date) -> None:
        async with s.runtime.sessions() as db, db.begin():
            await roll_up_due(db, today, ZONE, s.clock.now(), 181)

    await sc.play(events, s.runtime.sessions, s.clock, nightly)
    return events


def as_stored(events: list[sc.Ev]) -> sc.World:
    """The script's world as the roll-up stored it: a past day's cards as they stood at the last
    nightly run (as cockpit_script.expect takes them)."""
    return sc.stored_world(events)


def expected_units(by: str) -> dict[str, tuple[str, set[str]]]:
    """The rule as the README states it: branch = 分行/支行, team = 分行/支行/团队, a member above
    the level in their own department's row; manager = one row each, labelled with the name."""
    out: dict[str, tuple[str, set[str]]] = {}
    for userid, (name, dept) in sc.DIRECTORY.items():
        unit = userid if by == "manager" else "/".join(dept.split("/")[:LEVELS[by]])
        out.setdefault(unit, (name if by == "manager" else unit, set()))[1].add(userid)
    return out


TASK_COLUMNS = ("issued", "open", "snoozed", "done", "not_relevant", "escalated", "overdue")


def _task_rows(page: str) -> list[tuple[str, str, list[int]]]:
    """The tasks page's rows: userid, name, then the counts in TASK_COLUMNS' order."""
    rows = re.findall(r'<tr data-userid="([^"]+)">\s*<td>[^<]*</td><td>([^<]*)</td>((?:<td[^>]*>\d+</td>\s*)+)',
                      page)
    return [(u, name, [int(v) for v in re.findall(r">(\d+)</td>", cells)]) for u, name, cells in rows]


def span(first: date, last: date) -> set[date]:
    return {first + timedelta(days=i) for i in range((last - first).days + 1)}


async def report(s: Stack, capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert await cmd_report(parse(list(argv)), s.settings, s.clock) == 0
    return capsys.readouterr().out


async def test_rows_by_unit_equal_the_script(db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    async with console_stack(db_url, tmp_path) as s:
        events = await played(s)
        w = as_stored(events)
        # 14 past days, given explicitly; and the 90 days ending today (today's figures live).
        for since, until, period in ((sc.TODAY - timedelta(days=20), sc.TODAY - timedelta(days=7), ()),
                                     (sc.TODAY - timedelta(days=89), sc.TODAY, ("--days", "90"))):
            days = (until - since).days + 1
            cur, prev = span(since, until), span(since - timedelta(days=days), since - timedelta(days=1))
            for by in ("branch", "team", "manager"):
                out = await report(s, capsys, "cockpit", *(period or ("--since", since.isoformat(), "--until",
                                                                      until.isoformat())), "--by", by)
                got = json.loads(out)
                assert got["by"] == by and got["period"]["days"] == days
                assert got["period"]["previous_until"] == (since - timedelta(days=1)).isoformat()
                want = []
                for unit, (label, users) in sorted(expected_units(by).items()):
                    c, p = sc.figures(w, cur, users), sc.figures(w, prev, users)
                    want.append({"unit": unit, "label": label, "managers": len(users),
                                 **{k: {"current": c[k], "previous": p[k]} for k in c}})
                assert got["rows"] == want, (by, period)
                # Not all zero: every unit with a scripted manager in it says something.
                units = expected_units(by)
                assert all(r["added"]["current"] and r["tasks_issued"]["current"] for r in got["rows"]
                           if units[r["unit"]][1] & set(sc.MANAGERS)), (by, period)
        assert [r["unit"] for r in json.loads(await report(s, capsys, "cockpit", "--by", "branch"))["rows"]] == [
            "杭州分行", "杭州分行/城东支行", sc.NORTH, "杭州分行/城西支行"]
        since, until = sc.TODAY - timedelta(days=20), sc.TODAY - timedelta(days=7)
        cur, prev = span(since, until), span(since - timedelta(days=14), since - timedelta(days=1))

        # The whole bank over an explicit past period (unattributed SOP steps count here too).
        out = await report(s, capsys, "cockpit", "--since", since.isoformat(), "--until", until.isoformat())
        got = json.loads(out)
        c, p = sc.figures(w, cur, None), sc.figures(w, prev, None)
        assert got["figures"] == {k: {"current": c[k], "previous": p[k]} for k in c}
        assert got["period"]["until"] == until.isoformat()
        assert [d["day"] for d in got["daily"]] == sorted(d.isoformat() for d in cur)

        # One figure a line in CSV.
        csv_out = await report(s, capsys, "cockpit", "--since", since.isoformat(), "--until", until.isoformat(),
                               "--by", "team", "--csv")
        c, p = sc.figures(w, cur, {"zhangwei", "lina", "wangqiang"}), sc.figures(w, prev, {"zhangwei", "lina",
                                                                                          "wangqiang"})
        assert f"rows,{sc.WEST_PAYROLL},net,{c['net']},{p['net']}\n" in csv_out
        assert csv_out.startswith("section,item,figure,current,previous\n")


async def test_tasks_and_byte_identical_runs(db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    async with console_stack(db_url, tmp_path) as s:
        events = await played(s)
        w = sc.world(events)  # the tasks report reads the cards as they are now
        since = sc.TODAY - timedelta(days=29)

        def counts(users: set[str], first: date, last: date, today_open_is_overdue: bool) -> dict[str, int]:
            cards = [c for c in w.cards.values() if first <= c["day"] <= last and c["userid"] in users]
            n = Counter(c["status"] for c in cards)
            overdue = sum(1 for c in cards if c["status"] in ("open", "snoozed")
                          and (c["day"] < sc.TODAY or today_open_is_overdue))
            return {"issued": len(cards), "overdue": overdue,
                    **{k: n[k] for k in ("open", "snoozed", "done", "not_relevant", "escalated")}}

        got = json.loads(await report(s, capsys, "tasks", "--days", "30", "--by", "manager"))
        want: list[dict[str, Any]] = [{"unit": u, "label": label, "managers": 1,
                                       **counts(users, since, sc.TODAY, False)}
                                      for u, (label, users) in sorted(expected_units("manager").items())]
        assert got["rows"] == want
        assert sum(r["issued"] for r in want) > 50 and all(sum(r[k] for r in want) for k in ("open", "escalated"))
        # A past period: every card still open is overdue now.
        first, last = sc.TODAY - timedelta(days=9), sc.TODAY - timedelta(days=3)
        got = json.loads(await report(s, capsys, "tasks", "--since", first.isoformat(), "--until", last.isoformat(),
                                      "--dept", sc.EAST_RETAIL))
        assert got["figures"] == counts({"gaofei", "xuming"}, first, last, True)
        assert got["scope"] == {"dept": sc.EAST_RETAIL, "label": sc.EAST_RETAIL}

        # 90 days by branch and by team: a row per unit with cards.
        since = sc.TODAY - timedelta(days=89)
        for by in ("branch", "team"):
            got = json.loads(await report(s, capsys, "tasks", "--days", "90", "--by", by))
            want = [{"unit": u, "label": label, "managers": len(users), **counts(users, since, sc.TODAY, False)}
                    for u, (label, users) in sorted(expected_units(by).items())]
            assert got["rows"] == want, by

        # The tasks page: a row per manager with cards, and the totals, inside the viewer's scope.
        for viewer, scope in (("zhouhai", ""), ("mali", "杭州分行/城西支行"), ("xuming", sc.EAST_RETAIL)):
            await sign_in(s, viewer)
            page = await (await s.client.get("/console/tasks?days=90")).text()
            users = sorted((u for u, (_n, d) in sc.DIRECTORY.items() if not scope or d.startswith(scope)),
                           key=lambda u: (sc.DIRECTORY[u][1], u))
            want_rows = [(u, sc.DIRECTORY[u][0], counts({u}, since, sc.TODAY, False)) for u in users]
            want_rows = [(u, name, c) for u, name, c in want_rows if c["issued"]]
            assert _task_rows(page) == [(u, name, [c[k] for k in TASK_COLUMNS]) for u, name, c in want_rows], viewer
            total = counts(set(users), since, sc.TODAY, False)
            assert re.findall(r'<td data-total="(\w+)">(\d+)</td>', page) == [(k, str(total[k])) for k in TASK_COLUMNS]

        # Two runs, the same bytes; --days 7 is the 7 days ending today.
        for argv in (["cockpit", "--by", "branch"], ["tasks", "--by", "team", "--csv"], ["cockpit", "--days", "7"],
                     ["cockpit", "--days", "90", "--by", "manager"], ["tasks", "--days", "90", "--by", "branch"]):
            assert await report(s, capsys, *argv) == await report(s, capsys, *argv), argv
        week = await report(s, capsys, "cockpit", "--since", (sc.TODAY - timedelta(days=6)).isoformat())
        assert week == await report(s, capsys, "cockpit", "--days", "7")


async def test_bad_input_is_one_line(sqlite_url: str, tmp_path: Path) -> None:
    async with console_stack(sqlite_url, tmp_path) as s:
        today = s.clock.now().astimezone(sc.TZ).date()
        bad: list[tuple[list[str], str]] = [
            (["nope"], "unknown report 'nope'"),
            (["cockpit", "--since", "2026-13-01"], "not a date"),
            (["cockpit", "--since", "20261101"], "YYYY-MM-DD"),
            (["cockpit", "--since", (today - timedelta(days=3)).isoformat(), "--until",
              (today - timedelta(days=4)).isoformat()], "is after until"),
            (["cockpit", "--until", (today + timedelta(days=1)).isoformat()], "after today"),
            (["cockpit", "--since", (today - timedelta(days=400)).isoformat()], "at most 366 days"),
            (["cockpit", "--days", "7", "--since", today.isoformat()], "not both"),
            (["tasks", "--days", "x"], "days must be"),
            (["tasks", "--by", "region"], "by must be one of branch, team, manager"),
            (["tasks", "--dept", "杭州分行/没有这个支行"], "no department"),
        ]
        for argv, says in bad:
            with pytest.raises(UserError) as exc:
                await cmd_report(parse(argv), s.settings, s.clock)
            assert says in str(exc.value) and "\n" not in str(exc.value), argv


def test_the_command_exits_2_with_one_line(sqlite_url: str, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("SCRM_DATABASE__URL", sqlite_url)
    for argv in (["report", "nope"], ["report", "cockpit", "--since", "yesterday"], ["report", "tasks", "--by", "x"]):
        assert main(argv) == 2
        captured = capsys.readouterr()
        assert captured.out == "" and len(captured.err.splitlines()) == 1, captured.err
        assert captured.err.startswith("scrm: ")
    assert main(["report", "tasks", "--days", "7"]) == 0
    data: dict[str, Any] = json.loads(capsys.readouterr().out)
    assert data["figures"]["issued"] == 0 and data["period"]["days"] == 7


async def test_a_report_for_one_grant_is_split_by_narrowed_grants(sqlite_url: str, tmp_path: Path) -> None:
    """How the lead adds a report computed for one grant (the SOP effect's ``sop_effect``)."""
    calls: list[tuple[str, date, date, str]] = []
    pb: Any = object()  # the playbook, passed through untouched

    async def effect(db: Any, grant: Grant, *, playbook: Any, since: date, until: date, zone: str) -> dict[str, Any]:
        assert playbook is pb
        calls.append((grant.scope, since, until, zone))
        if since < date(2000, 1, 1):
            raise ValueError("too far back")
        return {"scope": grant.scope}

    compute = scoped(effect)
    first, last = sc.DAY0 - timedelta(days=6), sc.DAY0
    async with console_stack(sqlite_url, tmp_path) as s, s.runtime.sessions() as db:
        grant = Grant("mali", Role.BRANCH_HEAD, "杭州分行/城西支行")
        now = s.clock.now()
        got = await compute(db, grant, since=first, until=last, by=None, zone=ZONE, now=now, playbook=pb)
        assert got == {"scope": "杭州分行/城西支行"}
        got = await compute(db, grant, since=first, until=last, by="team", zone=ZONE, now=now, playbook=pb)
        # Teams inside the grant only; mali, sitting above the teams, is in no row.
        assert [(r["unit"], r["managers"], r["report"]) for r in got["rows"]] == [
            (sc.WEST_PAYROLL, 3, {"scope": sc.WEST_PAYROLL}), (sc.WEST_WEALTH, 2, {"scope": sc.WEST_WEALTH})]
        assert calls[-1] == (sc.WEST_WEALTH, first, last, ZONE)
        with pytest.raises(BadAsk):
            await compute(db, grant, since=first, until=last, by="manager", zone=ZONE, now=s.clock.now(),
                          playbook=pb)
        with pytest.raises(BadAsk, match="too far back"):
            await compute(db, grant, since=date(1999, 1, 1), until=last, by=None, zone=ZONE, now=s.clock.now(),
                          playbook=pb)
