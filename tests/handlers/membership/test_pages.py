"""The customer's check-in and quiz links, driven over HTTP on the running service (both
databases), with the shipped sop/membership.yaml: check-in earns once a local day (2 points, 2
growth), a quiz answered right once (10 points, 15 growth), a wrong answer nothing; only a POST
earns (a link preview's GET does not); a forged or altered link is a plain 404; the link
command refuses an unknown quiz in one line."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from handlers.membership import handlers as membership_handlers
from handlers.membership.links import PATH_PREFIX, Links
from handlers.membership.models import MembershipAccount, MembershipEntry
from scrm.cli import main
from tests.handlers.sop.seeding import local, seed
from tests.support.stack import Stack, stack

REPO = Path(__file__).resolve().parents[3]
START = local("2026-11-02", "10:00")
ALICE = "wmAlice"
CHECKIN, QUIZ = (2, 2), (10, 15)  # the shipped file's points and growth


@pytest.fixture
async def running(db_url: str, tmp_path: Path) -> AsyncIterator[Stack]:
    async with stack(db_url, tmp_path, start=START, demo=False, routers=[membership_handlers.router]) as b:
        (b.settings.playbook.sop_dir / "membership.yaml").write_text(
            (REPO / "sop" / "membership.yaml").read_text(encoding="utf-8"), encoding="utf-8")
        await seed(b, customers=[ALICE], added=START - timedelta(days=30))
        yield b


def path_of(link: str) -> str:
    return PATH_PREFIX + link.rsplit(PATH_PREFIX, 1)[1]


async def balance(b: Stack) -> tuple[int, int]:
    async with b.runtime.sessions() as s:
        a = await s.get(MembershipAccount, ALICE, populate_existing=True)
        return (a.points, a.growth) if a else (0, 0)


async def test_check_in_earns_once_a_day_and_only_on_post(running: Stack) -> None:
    b = running
    url = path_of(Links(b.settings).link("checkin", ALICE))
    page = await b.client.get(url)
    assert page.status == 200 and "签到" in await page.text()
    assert await balance(b) == (0, 0)  # showing the page earns nothing
    first = await (await b.client.post(url)).text()
    assert f"签到成功！获得 {CHECKIN[0]} 积分、{CHECKIN[1]} 成长值。" in first
    again = await (await b.client.post(url)).text()
    assert "今天已经签过到了" in again
    b.clock.advance(days=1)
    await b.client.post(url)
    assert await balance(b) == (2 * CHECKIN[0], 2 * CHECKIN[1])
    async with b.runtime.sessions() as s:
        sources = sorted(set((await s.scalars(select(MembershipEntry.source))).all()))
    assert sources == ["checkin:2026-11-02", "checkin:2026-11-03"]


async def test_a_quiz_earns_once_when_answered_right(running: Stack) -> None:
    b = running
    url = path_of(Links(b.settings).link("quiz", ALICE, "deposit_insurance"))
    page = await (await b.client.get(url)).text()
    assert "最高偿付限额" in page and 'value="50万元"' in page
    wrong = await (await b.client.post(url, data={"answer": "20万元"})).text()
    assert "回答不正确" in wrong and await balance(b) == (0, 0)
    right = await (await b.client.post(url, data={"answer": "50万元"})).text()
    assert "回答正确！答题成功！" in right
    await b.client.post(url, data={"answer": "50万元"})
    assert await balance(b) == QUIZ
    assert "您已答对本题" in await (await b.client.get(url)).text()


async def test_forged_or_retired_links(running: Stack) -> None:
    b = running
    token = Links(b.settings).token("checkin", ALICE)
    altered = token[:-2] + ("AA" if token[-2:] != "AA" else "BB")
    for bad in (altered, "junk", "x" * 700):
        resp = await b.client.post(PATH_PREFIX + bad)
        assert resp.status == 404
    assert await balance(b) == (0, 0)
    gone = await (await b.client.get(path_of(Links(b.settings).link("quiz", ALICE, "no_such_quiz")))).text()
    assert "本题已下线" in gone
    # A broken file closes the activity (one page, no error), and earns nothing.
    (b.settings.playbook.sop_dir / "membership.yaml").write_text("behaviours: [oops]\nlevels: {}\n", encoding="utf-8")
    closed = await b.client.post(path_of(Links(b.settings).link("checkin", ALICE)))
    assert closed.status == 200 and "签到活动暂未开放" in await closed.text()
    assert await balance(b) == (0, 0)


def test_the_link_command(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("SCRM_PLAYBOOK__SOP_DIR", str(REPO / "sop"))
    monkeypatch.setenv("SCRM_PLAYBOOK__MATERIALS_DIR", str(REPO / "materials"))
    monkeypatch.setenv("SCRM_MEMBERSHIP__LINK_KEY", "test-key")
    assert main(["membership", "link", ALICE, "quiz", "fund_risk"]) == 0
    assert capsys.readouterr().out.strip().split(PATH_PREFIX)[1]
    assert main(["membership", "link", ALICE, "quiz", "nope"]) == 2
    assert capsys.readouterr().err.strip() == (
        "scrm: unknown quiz 'nope' (sop/membership.yaml quizzes: deposit_insurance, fund_risk)")
