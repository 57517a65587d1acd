"""The 客群与会员 page (``/console/segments``): a fixture of customers of four managers in two
sub-branches (and one nobody follows), in known segments, stages, levels, points and level
changes, is counted by the ``console.segments`` job into its per-manager snapshot; the page's
figures equal what this test works out from the fixture alone (plain Python: each customer's
manager is their earliest active relation) for the whole bank, a branch head, a manager
drill-down and a team lead; a team lead asking for another branch is refused; rebuilding the
snapshot from the raw rows gives the same rows; before any snapshot, the page says so."""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import AsyncIterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from playwright.async_api import Browser, expect
from sqlalchemy import select

from handlers.console import segjobs, segstore
from handlers.console.segmodels import ConsoleSegCell, ConsoleSegFlow, ConsoleSegLevel, ConsoleSegRun, ConsoleSegTop
from handlers.contacts.api import Customer, Follow
from handlers.lifecycle.api import CustomerSegment
from handlers.membership.api import MembershipAccount, MembershipLevelChange
from handlers.staff.directory import apply_snapshot
from handlers.staff.sync import read_directory
from scrm.kernel.models import DueJob
from tests.handlers.console.support import ACCESS, sign_in
from tests.support.playbooks import write_shipped_playbook
from tests.support.stack import Stack, stack
from tests.support.web import free_port, screenshots_dir

TZ = ZoneInfo("Asia/Shanghai")
TODAY = date(2026, 11, 2)  # the fake clock's first day
WEST_TEAM, WEALTH_TEAM, EAST_TEAM = ("杭州分行/城西支行/代发服务团队", "杭州分行/城西支行/财富管理团队",
                                     "杭州分行/城东支行/零售客户团队")
MANAGERS = {"zhangwei": WEST_TEAM, "lina": WEST_TEAM, "chenjing": WEALTH_TEAM, "gaofei": EAST_TEAM}
# The only path: every segment on entering 沉默 (silent); every other stage with customers is a gap.
WINBACK = """\
path: winback
name: 沉默唤醒
when: {stage_entered: silent}
steps:
  - {id: w1, on: "stage_entered + 1 day", at: "10:00", send: t-text}
"""
SEGMENTS = ["payroll", "silver", "new", "car_owner", "merchant", "cross_border", ""]  # segments.yaml, then none
STAGES = ["new", "lost", "silent", "slipping", "active", "activating"]  # lifecycle.yaml (its order)
LEVELS_HIGH_FIRST = ["seed", "core", "ordinary", "new"]  # membership.yaml, reversed

#: ext → (relations [(manager, days before now, status)], segments, stage, level, points, growth, reserved)
Fixture = tuple[list[tuple[str, int, str]], list[str], str | None, str, int, int, int]
CUSTOMERS: dict[str, Fixture] = {
    "c01": ([("zhangwei", 30, "active")], ["payroll"], "active", "core", 500, 300, 0),
    # Two active relations: lina's is the earlier one.
    "c02": ([("zhangwei", 20, "active"), ("lina", 40, "active")], ["payroll", "silver"], "silent", "seed", 900, 800,
            100),
    # An earlier relation that was lost does not count: zhangwei's.
    "c03": ([("lina", 50, "lost"), ("zhangwei", 10, "active")], [], "new", "new", 10, 5, 0),
    "c04": ([("chenjing", 15, "active")], ["silver"], "silent", "ordinary", 120, 90, 20),
    "c05": ([("gaofei", 12, "active")], ["merchant"], "slipping", "ordinary", 200, 100, 0),
    "c06": ([], ["car_owner"], "active", "new", 5, 1, 0),  # nobody follows them: the whole bank only
    "c07": ([("gaofei", 3, "active")], ["payroll"], None, "new", 0, 0, 0),  # not staged yet: no cell
}
for _i in range(8, 20):
    CUSTOMERS[f"c{_i:02d}"] = ([(list(MANAGERS)[_i % 4], 5 + _i, "active")], [["payroll"], ["new"], []][_i % 3],
                               STAGES[_i % 6], LEVELS_HIGH_FIRST[_i % 4], 100 + 7 * _i, 50 + (37 * _i) % 200,
                               5 * (_i % 3))
#: (ext, previous, level, direction, local time): the flows shown are those from 2026-09-01 (local).
CHANGES = [
    ("c01", "new", "ordinary", "up", datetime(2026, 9, 5, 10, 0)),
    ("c01", "ordinary", "core", "up", datetime(2026, 10, 31, 23, 30)),  # October locally, though 15:30 UTC
    ("c02", "core", "seed", "up", datetime(2026, 11, 1, 0, 30)),  # November locally, October in UTC
    ("c04", "core", "ordinary", "down", datetime(2026, 10, 1, 0, 0)),
    ("c05", "new", "ordinary", "up", datetime(2026, 8, 31, 23, 0)),  # before the 3 months
    ("c06", "ordinary", "new", "down", datetime(2026, 9, 10, 8, 0)),
    ("c09", "core", "ordinary", "down", datetime(2026, 10, 1, 0, 0)),
    ("c10", "ordinary", "core", "up", datetime(2026, 11, 2, 8, 0)),
]
FLOWS_SINCE = datetime(2026, 9, 1, 0, 0)


# -- the expectation, from the fixture alone ------------------------------------------------------

def owner(ext: str) -> str | None:
    active = [(days, m) for m, days, status in CUSTOMERS[ext][0] if status == "active"]
    return max(active)[1] if active else None  # the most days ago: the earliest


def members_of(managers: set[str] | None) -> list[str]:
    """The fixture's customers in a scope (None: the whole bank, the unfollowed included)."""
    return sorted(c for c in CUSTOMERS if managers is None or owner(c) in managers)


def expected(managers: set[str] | None) -> dict[str, Any]:
    mine = members_of(managers)
    cells: Counter[tuple[str, str]] = Counter()
    for c in mine:
        _, segments, stage, *_ = CUSTOMERS[c]
        if stage is not None:
            for s in segments or [""]:
                cells[(s, stage)] += 1
    levels = Counter(CUSTOMERS[c][3] for c in mine)
    total = len(mine)
    flows: dict[str, Counter[tuple[str, str, str]]] = {}
    for ext, previous, level, direction, at in CHANGES:
        if ext in mine and at >= FLOWS_SINCE:
            flows.setdefault(at.strftime("%Y-%m"), Counter())[(direction, previous, level)] += 1
    top = sorted(((c, CUSTOMERS[c][5], CUSTOMERS[c][4], CUSTOMERS[c][3]) for c in mine), key=lambda r: (-r[1], r[0]))
    return {
        "cells": {(s, st): cells[(s, st)] for s in SEGMENTS for st in STAGES},
        "gaps": {(s, st) for (s, st), n in cells.items() if n and st != "silent"},
        "pyramid": [(lv, levels[lv], levels[lv] / total if total else None) for lv in LEVELS_HIGH_FIRST],
        "points": sum(CUSTOMERS[c][4] for c in mine),
        "reserved": sum(CUSTOMERS[c][6] for c in mine),
        "flows": {m: {"ups": sum(n for (d, *_), n in f.items() if d == "up"),
                      "downs": sum(n for (d, *_), n in f.items() if d == "down"), "moves": dict(f)}
                  for m, f in flows.items()},
        "top": top[:10],
    }


def shown(page: dict[str, Any]) -> dict[str, Any]:
    """The page's JSON in the expectation's shape."""
    matrix, membership = page["matrix"], page["membership"]
    assert [r["segment"] for r in matrix["rows"]] == SEGMENTS
    assert [c["stage"] for c in matrix["columns"]] == STAGES
    for r in matrix["rows"]:
        for c in r["cells"]:
            assert c["sops"] == (["winback"] if c["stage"] == "silent" else []), c
    return {
        "cells": {(r["segment"], c["stage"]): c["count"] for r in matrix["rows"] for c in r["cells"]},
        "gaps": {(r["segment"], c["stage"]) for r in matrix["rows"] for c in r["cells"] if c["gap"]},
        "pyramid": [(p["level"], p["members"], p["share"]) for p in membership["pyramid"]],
        "points": membership["points_outstanding"],
        "reserved": membership["points_reserved"],
        "flows": {f["month"]: {"ups": f["ups"], "downs": f["downs"],
                               "moves": {(m["direction"], m["from"], m["to"]): m["count"] for m in f["moves"]}}
                  for f in membership["flows"]},
        "top": [(t["external_userid"], t["growth"], t["points"], t["level"]) for t in membership["top"]],
    }


def test_the_fixture_exercises_every_case() -> None:
    assert owner("c02") == "lina" and owner("c03") == "zhangwei" and owner("c06") is None
    whole = expected(None)
    assert len(members_of(None)) > 10 and len(whole["gaps"]) > 1
    assert set(whole["flows"]) == {"2026-09", "2026-10", "2026-11"}
    assert whole["top"][0][0] == "c02"


# -- the stack ------------------------------------------------------------------------------------

@contextlib.asynccontextmanager
async def segments_stack(db_url: str, root: Path, *, port: int | None = None,
                         console: dict[str, Any] | None = None) -> AsyncIterator[Stack]:
    """The console on the demo bank (directory synced, support's access file) running the shipped
    playbook with the one path above, and the fixture's customers."""
    playbook = write_shipped_playbook(root / "pb", paths={"winback": WINBACK})
    sections: dict[str, Any] = {"server": {"public_url": f"http://127.0.0.1:{port or 8080}"},
                                "console": console or {}}
    async with stack(db_url, root, sections=sections, port=port, playbook=playbook) as s:
        (playbook[0] / "console.yaml").write_text(ACCESS, encoding="utf-8")
        snapshot = await read_directory(s.runtime.wecom)
        async with s.runtime.sessions() as db, db.begin():
            await apply_snapshot(db, snapshot, s.clock.now())
        await seed(s)
        yield s


async def seed(s: Stack) -> None:
    now = s.clock.now()
    assert now.astimezone(TZ).date() == TODAY
    async with s.runtime.sessions() as db, db.begin():
        for ext, (relations, segments, stage, level, points, growth, reserved) in CUSTOMERS.items():
            db.add(Customer(external_userid=ext, name=f"客户{ext}", updated_at=now))
            for manager, days, status in relations:
                db.add(Follow(userid=manager, external_userid=ext, created_at=now - timedelta(days=days),
                              status=status))
            db.add(CustomerSegment(external_userid=ext, segments=segments, stage=stage, computed_at=now))
            db.add(MembershipAccount(external_userid=ext, points=points, growth=growth, reserved=reserved, level=level,
                                     level_since=TODAY, updated_at=now))
        for i, (ext, previous, level, direction, at) in enumerate(CHANGES):
            db.add(MembershipLevelChange(external_userid=ext, previous=previous, level=level, direction=direction,
                                         cause=f"test:{i}", at=at.replace(tzinfo=TZ)))


async def page(s: Stack, query: str = "") -> dict[str, Any]:
    response = await s.client.get(f"/console/segments?format=json{query}")
    assert response.status == 200, await response.text()
    data: dict[str, Any] = await response.json()
    return data


# -- the tests ------------------------------------------------------------------------------------

async def test_the_page_shows_the_fixture_per_scope(db_url: str, tmp_path: Path) -> None:
    async with segments_stack(db_url, tmp_path) as s:
        await sign_in(s, "zhouhai")
        before = await page(s)
        assert before["snapshot"] is None and before["matrix"] is None
        html = await (await s.client.get("/console/segments")).text()
        assert 'id="computing"' in html

        await s.step()  # the start-up job (console.segments.now) counts the snapshot
        whole = await page(s)
        assert whole["snapshot"]["day"] == TODAY.isoformat() and whole["snapshot"]["flows_since"] == "2026-09-01"
        assert shown(whole) == expected(None)
        assert shown(await page(s, "&dept=" + quote("杭州分行/城东支行"))) == expected({"gaofei"})
        assert shown(await page(s, "&manager=lina")) == expected({"lina"})

        await sign_in(s, "mali")  # branch head of 城西支行: zhangwei, lina, chenjing
        branch = await page(s)
        assert branch["scope"]["dept"] == "杭州分行/城西支行"
        assert shown(branch) == expected({"zhangwei", "lina", "chenjing"})
        assert shown(await page(s, "&manager=chenjing")) == expected({"chenjing"})

        await sign_in(s, "xuming")  # team lead of the east retail team
        assert shown(await page(s)) == expected({"gaofei"})
        for query in ("?dept=" + quote("杭州分行/城西支行"), "?manager=zhangwei", "?dept=" + quote("杭州分行")):
            refused = await s.client.get(f"/console/segments{query}")
            assert refused.status == 403, query
        assert (await s.client.get("/console/segments?manager=nobody")).status == 400


async def test_the_html_highlights_the_gaps(db_url: str, tmp_path: Path) -> None:
    async with segments_stack(db_url, tmp_path) as s:
        await s.step()
        await sign_in(s, "zhouhai")
        html = await (await s.client.get("/console/segments")).text()
        want = expected(None)
        assert html.count('class="num gap"') == len(want["gaps"])
        assert f'{len(want["gaps"])} 个格子有客户但没有SOP' in html
        level, members, _ = want["pyramid"][0]
        assert f'<tr data-level="{level}" data-members="{members}">' in html
        assert "客群与会员" in html and 'href="/console/segments"' in html


async def test_rebuilding_the_snapshot_gives_the_same_rows(db_url: str, tmp_path: Path) -> None:
    async with segments_stack(db_url, tmp_path) as s:
        async def stored() -> dict[str, list[tuple[Any, ...]]]:
            async with s.runtime.sessions() as db:
                out: dict[str, list[tuple[Any, ...]]] = {}
                for table in (ConsoleSegCell, ConsoleSegLevel, ConsoleSegFlow, ConsoleSegTop):
                    cols = [c for c in table.__table__.columns if c.name != "run_id"]
                    out[table.__tablename__] = sorted(tuple(r) for r in (await db.execute(select(*cols))).all())
                return out

        now = s.clock.now()
        async with s.runtime.sessions() as db, db.begin():
            await segstore.rebuild(db, TODAY - timedelta(days=1), now - timedelta(days=1), TZ)
        async with s.runtime.sessions() as db, db.begin():
            await segstore.rebuild(db, TODAY, now, TZ)
        once = await stored()
        async with s.runtime.sessions() as db, db.begin():
            second = await segstore.rebuild(db, TODAY, now + timedelta(minutes=5), TZ)
        assert await stored() == once
        async with s.runtime.sessions() as db:
            # One run per day, and only the newest day's kept.
            assert (await db.scalars(select(ConsoleSegRun.id))).all() == [second.id]
            assert (await segstore.latest(db)) == second
        # The whole bank's rows are the sum of the managers' (and the unfollowed customer's).
        bank = {(seg, st): n for owner_, seg, st, n in once["console_seg_cell"] if owner_ == segstore.WHOLE_BANK}
        assert bank == {k: n for k, n in expected(None)["cells"].items() if n}
        assert {o for o, *_ in once["console_seg_cell"]} == {"*", "", "zhangwei", "lina", "chenjing", "gaofei"}
        # Each manager keeps at most 10 top earners.
        assert max(Counter(o for o, *_ in once["console_seg_top"]).values()) <= segstore.TOP
        # The start-up job leaves a stored snapshot alone.
        await s.step()
        async with s.runtime.sessions() as db:
            assert (await db.scalars(select(ConsoleSegRun.id))).all() == [second.id]


async def test_the_jobs_are_registered_as_configured(sqlite_url: str, tmp_path: Path) -> None:
    async with segments_stack(sqlite_url, tmp_path) as s:
        async with s.runtime.sessions() as db:
            jobs = {j.job_key: j for j in (await db.scalars(select(DueJob))).all()}
        nightly = jobs[segjobs.JOB_KEY]
        assert nightly.enabled and nightly.trigger["expr"] == "30 4 * * *"
        assert jobs[segjobs.NOW_JOB_KEY].payload == {"only_if_missing": True}


async def test_the_nightly_snapshot_can_be_turned_off(sqlite_url: str, tmp_path: Path) -> None:
    async with segments_stack(sqlite_url, tmp_path, console={"segments_cron": ""}) as s:
        async with s.runtime.sessions() as db:
            enabled = set((await db.scalars(select(DueJob.job_key).where(DueJob.enabled.is_(True)))).all())
        assert segjobs.JOB_KEY not in enabled and segjobs.NOW_JOB_KEY in enabled  # still taken once


async def test_the_page_renders_the_matrix_in_a_browser(sqlite_url: str, tmp_path: Path, browser: Browser) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    async with segments_stack(sqlite_url, tmp_path, port=port) as s:
        await s.step()
        context = await browser.new_context(locale="zh-CN")
        browser_page = await context.new_page()
        await browser_page.goto(f"{base}/console/")
        await browser_page.click("#wecom-login")
        await browser_page.get_by_role("link", name="周海（zhouhai）").click()
        await expect(browser_page).to_have_url(f"{base}/console/")
        await browser_page.click("text=客群与会员")
        await expect(browser_page).to_have_url(f"{base}/console/segments")
        want = expected(None)
        gap = sorted(want["gaps"])[0]
        cell = browser_page.locator(f'#matrix tr[data-segment="{gap[0]}"] td[data-stage="{gap[1]}"]')
        await expect(cell).to_have_class("num gap")
        await expect(cell).to_contain_text("无SOP")
        covered = browser_page.locator('#matrix tr[data-segment="payroll"] td[data-stage="silent"]')
        await expect(covered).to_contain_text("winback")
        await expect(covered).not_to_have_class("num gap")
        await expect(browser_page.locator("#matrix td.gap")).to_have_count(len(want["gaps"]))
        await expect(browser_page.locator("#pyramid tbody tr")).to_have_count(4)
        await expect(browser_page.locator("#top tbody tr")).to_have_count(10)
        await browser_page.screenshot(path=str(screenshots_dir(tmp_path) / "console-segments.png"), full_page=True)
        await context.close()
