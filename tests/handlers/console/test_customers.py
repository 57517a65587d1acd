"""The customers pages: every search combination, page by page, equals what the bank's own
script says (computed here in plain Python, never by the code under test), for every role and
for both ways a search reads (from a small book, or walking the customer index); a team lead
neither finds nor opens another branch's customer (403, audited); a customer's page shows their
attributes with AUM only as its band, relations, tags, cards, sends, opens and a timeline 100
entries a page; on SQLite and PostgreSQL. One browser run: search, open, see."""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from html import unescape
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from playwright.async_api import Browser, expect
from sqlalchemy import select

from handlers.console import customers as cu
from handlers.console.access import Grant, Role
from handlers.console.models import ConsoleAudit
from handlers.console.scope import ScopeRefused
from handlers.contacts.api import Customer, Follow
from handlers.crm.api import Binding, CrmCustomer
from handlers.radar.api import RadarClick
from handlers.sop.api import SopSend, SopTask
from handlers.tags.api import FollowTag, Tag, TagGroup
from handlers.timeline.api import Timeline
from tests.handlers.console.cockpit_script import DIRECTORY, EAST_RETAIL, WEST_PAYROLL
from tests.handlers.console.support import console_stack, sign_in
from tests.support.stack import Stack
from tests.support.web import free_port, screenshots_dir

MANAGERS = ["zhangwei", "lina", "chenjing", "gaofei", "xuming"]
NAMES = ["张", "张伟", "王芳", "李娜", "Sunny", "sunny li", "SAM", "sam", "Anna", "安娜", "张三丰"]
# (group id, group name, [(tag id, tag name)]): 理财 is a tag name in two groups.
TAGS = [("g1", "兴趣", [("t-lc", "理财"), ("t-jk", "健康")]), ("g2", "渠道", [("t-qd", "理财"), ("t-wd", "网点")])]
GRANTS = {
    "zhouhai": Grant("zhouhai", Role.OPS_ADMIN), "sunhui": Grant("sunhui", Role.AUDITOR),
    "mali": Grant("mali", Role.BRANCH_HEAD, "杭州分行/城西支行"),
    "wangqiang": Grant("wangqiang", Role.TEAM_LEAD, WEST_PAYROLL),
    "xuming": Grant("xuming", Role.TEAM_LEAD, EAST_RETAIL),
}
AUM = 1234567.5  # the band it falls in, by the shipped bands: 50万 ≤ AUM < 600万
AUM_BAND = "50万-600万"
LARGE_TRANSFER = 88888888


@dataclass
class Bank:
    customers: dict[str, tuple[str, str | None]] = field(default_factory=dict)  # ext → (name, crm_id)
    follows: list[tuple[str, str, str]] = field(default_factory=list)  # (userid, ext, status)
    tags: list[tuple[str, str, str]] = field(default_factory=list)  # (userid, ext, tag id)
    bindings: dict[str, str] = field(default_factory=dict)  # crm_id → ext

    def visible(self, grant: Grant, ext: str) -> bool:
        return any(e == ext and grant.covers(DIRECTORY[u][1]) for u, e, _ in self.follows)

    def expect(self, grant: Grant, *, q: str = "", tag: set[str] | None = None, manager: str = "",
               crm_id: str = "") -> list[str]:
        """The customers a search finds, in the page's order: plain Python over the script."""
        out = []
        for ext, (name, own_crm) in self.customers.items():
            if not self.visible(grant, ext):
                continue
            if q and not name.lower().startswith(q.lower()):
                continue
            if tag is not None and not any(e == ext and t in tag and grant.covers(DIRECTORY[u][1])
                                           for u, e, t in self.tags):
                continue
            if manager and not any(u == manager and e == ext for u, e, _ in self.follows):
                continue
            if crm_id and own_crm != crm_id and self.bindings.get(crm_id) != ext:
                continue
            out.append(ext)
        return sorted(out, key=lambda e: (self.customers[e][0].lower(), e) if q else (e,))


def script(seed: int = 4) -> Bank:
    rng = random.Random(seed)
    bank = Bank()
    for i in range(140):
        ext = f"wm{rng.randrange(16 ** 6):06x}{i:03d}"
        crm_id = f"C{i:04d}" if i % 3 == 0 else None
        bank.customers[ext] = (rng.choice(NAMES) + (str(i % 7) if i % 2 else ""), crm_id)
        if i % 10 == 1:
            bank.bindings[f"B{i:04d}"] = ext  # a CRM id known only by a binding
        for userid in rng.sample(MANAGERS, rng.choice([1, 1, 2])):
            bank.follows.append((userid, ext, rng.choice(["active", "active", "lost", "transferred"])))
            for _, _, tags in TAGS:
                for tag_id, _ in tags:
                    if rng.random() < 0.2:
                        bank.tags.append((userid, ext, tag_id))
    return bank


async def seed(s: Stack, bank: Bank) -> None:
    now = s.clock.now()
    async with s.runtime.sessions() as db, db.begin():
        for group_id, group, tags in TAGS:
            db.add(TagGroup(group_id=group_id, name=group))
            db.add_all(Tag(tag_id=t, group_id=group_id, name=n) for t, n in tags)
        db.add(Tag(tag_id="t-gone", group_id="g1", name="旧标签", deleted=True))
        db.add_all(Customer(external_userid=ext, name=name, crm_id=crm_id, updated_at=now)
                   for ext, (name, crm_id) in bank.customers.items())
        db.add_all(Follow(userid=u, external_userid=e, status=st, created_at=now - timedelta(days=30))
                   for u, e, st in bank.follows)
        db.add_all(FollowTag(userid=u, external_userid=e, tag_id=t, added_at=now) for u, e, t in bank.tags)
        db.add_all(Binding(crm_id=c, external_userid=e, source="explicit", bound_at=now)
                   for c, e in bank.bindings.items())


SEARCHES: list[dict[str, Any]] = [
    {}, {"q": "张"}, {"q": "sun"}, {"q": "SAM"}, {"q": "张伟"}, {"q": "zz"}, {"tag": "t-jk"}, {"tag": "理财"},
    {"tag": "渠道/理财"}, {"tag": "网点", "q": "张"}, {"manager": "zhangwei"}, {"manager": "gaofei", "tag": "健康"},
    {"crm_id": "C0003"}, {"crm_id": "B0011"}, {"q": "s", "manager": "lina", "tag": "t-wd"},
]
TAG_IDS = {"t-jk": {"t-jk"}, "理财": {"t-lc", "t-qd"}, "渠道/理财": {"t-qd"}, "网点": {"t-wd"}, "健康": {"t-jk"},
           "t-wd": {"t-wd"}}


async def _all_pages(s: Stack, grant: Grant, f: cu.Filters) -> list[str]:
    found: list[str] = []
    after = ""
    for _ in range(20):
        async with s.runtime.sessions() as db:
            page = await cu.search(db, grant, f, after=after)
        assert len(page.rows) == cu.PAGE or not page.after, "every page but the last is full"
        found += [r.external_userid for r in page.rows]
        after = page.after
        if not after:
            return found
    raise AssertionError("no last page")


async def test_every_search_equals_the_script(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bank = script()
    async with console_stack(db_url, tmp_path) as s:
        await seed(s, bank)
        assert len(bank.expect(GRANTS["zhouhai"])) > 2 * cu.PAGE  # three pages at least
        checked = 0
        for small_book in (cu.SMALL_BOOK, 1):  # books read from the manager side, then by walking
            monkeypatch.setattr(cu, "SMALL_BOOK", small_book)
            for who, grant in GRANTS.items():
                for args in SEARCHES:
                    if args.get("manager") and not grant.covers(DIRECTORY[args["manager"]][1]):
                        continue
                    want = bank.expect(grant, q=args.get("q", ""), manager=args.get("manager", ""),
                                       crm_id=args.get("crm_id", ""),
                                       tag=TAG_IDS[args["tag"]] if "tag" in args else None)
                    got = await _all_pages(s, grant, cu.Filters(**args))
                    assert got == want, (who, args, small_book)
                    checked += bool(want)
        assert checked > 40  # most searches find someone (nothing passes by being empty on both sides)
        # The scoped views differ from the whole bank's and from each other.
        lists = {who: bank.expect(g) for who, g in GRANTS.items()}
        assert len({tuple(v) for v in lists.values()}) == 4 and not set(lists["wangqiang"]) & (
            set(lists["xuming"]) - set(lists["mali"]))

        async with s.runtime.sessions() as db:
            with pytest.raises(ScopeRefused):  # a manager outside the team lead's scope
                await cu.search(db, GRANTS["xuming"], cu.Filters(manager="zhangwei"))
            with pytest.raises(cu.BadSearch):
                await cu.search(db, GRANTS["zhouhai"], cu.Filters(manager="nobody"))
            with pytest.raises(cu.BadSearch):
                await cu.search(db, GRANTS["zhouhai"], cu.Filters(q="张"), after="not-a-cursor")
            none = await cu.search(db, GRANTS["zhouhai"], cu.Filters(tag="旧标签"))  # deleted: no such tag
            assert none.rows == [] and "旧标签" in none.notice


def _customer_rows(page: str) -> list[str]:
    return re.findall(r'<tr data-customer="([^"]+)">', page)


async def test_the_search_page_pages_and_keeps_a_team_lead_to_their_scope(db_url: str, tmp_path: Path) -> None:
    bank = script()
    async with console_stack(db_url, tmp_path) as s:
        await seed(s, bank)
        await sign_in(s, "zhouhai")
        url, seen = "/console/customers", []
        while url:
            resp = await s.client.get(url)
            assert resp.status == 200, await resp.text()
            page = await resp.text()
            seen += _customer_rows(page)
            more = re.search(r'<a href="([^"]+)" hx-get', page)
            url = unescape(more.group(1)) if more else ""
        assert seen == bank.expect(GRANTS["zhouhai"]) and len(seen) > 2 * cu.PAGE
        named = _customer_rows(await (await s.client.get("/console/customers?q=" + quote("张"))).text())
        assert named == bank.expect(GRANTS["zhouhai"], q="张")

        for bad in ("/console/customers?after=%%%", "/console/customers?crm_id=a%20b",
                    "/console/customers?q=" + "x" * 65):
            resp = await s.client.get(bad)
            assert resp.status == 400 and len((await resp.text()).strip().splitlines()) == 1, bad

        # xuming leads the east team: west-only customers are neither found nor opened.
        await sign_in(s, "xuming")
        west_only = [e for e in bank.customers if bank.visible(GRANTS["wangqiang"], e)
                     and not bank.visible(GRANTS["xuming"], e)]
        assert west_only
        page = await (await s.client.get("/console/customers")).text()
        assert _customer_rows(page) == bank.expect(GRANTS["xuming"])[:cu.PAGE]
        assert not set(_customer_rows(page)) & set(west_only)
        resp = await s.client.get(f"/console/customers/{west_only[0]}")
        assert resp.status == 403
        resp = await s.client.get("/console/customers?manager=zhangwei")
        assert resp.status == 403
        async with s.runtime.sessions() as db:
            refused = (await db.scalars(select(ConsoleAudit.target).where(
                ConsoleAudit.actor == "xuming", ConsoleAudit.action == "forbidden"))).all()
        assert refused == [f"/console/customers/{west_only[0]}", "/console/customers"]


@dataclass
class Picture:
    ext: str
    timeline: list[str]  # the timeline entries' titles, newest first (ties: the later written first)


async def seed_picture(s: Stack) -> Picture:
    """One customer with everything: CRM record (AUM), two relations in two branches with tags,
    cards, sends, opens and 130 timeline entries (two sharing an instant across the page break)."""
    now, ext = s.clock.now(), "wmPICTURE01"
    async with s.runtime.sessions() as db, db.begin():
        for group_id, group, tags in TAGS:
            db.add(TagGroup(group_id=group_id, name=group))
            db.add_all(Tag(tag_id=t, group_id=group_id, name=n) for t, n in tags)
        db.add(Customer(external_userid=ext, name="wx张", crm_id="CRM9", updated_at=now))
        db.add(CrmCustomer(crm_id="CRM9", updated_at=now, attributes={
            "name": "张明远", "tier": "V1", "segment": "payroll", "aum": AUM, "products": "基金|理财",
            "id_number": "330100199001011234"}))
        db.add(Follow(userid="zhangwei", external_userid=ext, state="payroll-onboarding", add_way=1,
                      created_at=now - timedelta(days=40), remark="张总"))
        db.add(Follow(userid="gaofei", external_userid=ext, add_way=202, status="transferred",
                      created_at=now - timedelta(days=90)))
        db.add_all([FollowTag(userid="zhangwei", external_userid=ext, tag_id="t-lc", added_at=now),
                    FollowTag(userid="gaofei", external_userid=ext, tag_id="t-wd", added_at=now)])
        db.add_all([SopTask(task_id="task-west", key="k1", userid="zhangwei", target=ext, source="reminder:birthday",
                            title="生日问候", day=now.date(), created_at=now),
                    SopTask(task_id="task-east", key="k2", userid="gaofei", target=ext, source="reminder:maturity",
                            title="到期提醒", day=now.date(), status="done", created_at=now)])
        db.add(SopSend(key="s1", target=ext, target_type="customer", source="path:payroll-wealth", step="day3",
                       material="payroll-wealth", day=now.date(), created_at=now - timedelta(hours=5)))
        db.add(RadarClick(token_id="tok1", material_id="fund-weekly", sender="zhangwei", external_userid=ext,
                          at=now - timedelta(hours=2)))
        titles: list[tuple[datetime, int, str]] = []
        for i in range(130):
            at = now - timedelta(minutes=10 * i) if i != 100 else now - timedelta(minutes=10 * 99)
            titles.append((at, i, f"第{i}条"))
            db.add(Timeline(subject_type="customer", subject_id=ext, at=at, kind="sidebar.send",
                            detail={"manager": "zhangwei", "title": f"第{i}条", "material": "m"}))
            await db.flush()  # ids in the script's order
        db.add(Timeline(subject_type="customer", subject_id=ext, at=now - timedelta(days=30), kind="crm.event",
                        detail={"kind": "large_transfer", "payload": {"amount": LARGE_TRANSFER}}))
        titles.append((now - timedelta(days=30), 999, ""))
    order = sorted(titles, key=lambda x: (x[0], x[1]), reverse=True)
    return Picture(ext, [t for _, _, t in order])


def _texts(page: str, table: str) -> str:
    start = page.index(f'id="{table}"')
    return unescape(re.sub(r"<[^>]+>", " ", page[start:page.index("</table>", start)]))


async def test_a_customers_page_shows_the_picture_with_aum_as_a_band(db_url: str, tmp_path: Path) -> None:
    async with console_stack(db_url, tmp_path) as s:
        pic = await seed_picture(s)
        await sign_in(s, "zhouhai")
        resp = await s.client.get(f"/console/customers/{pic.ext}")
        assert resp.status == 200, await resp.text()
        page = await resp.text()
        attrs = _texts(page, "attributes")
        assert "张明远" in attrs and "CRM9" in attrs and AUM_BAND in attrs and "基金" in attrs
        for figure in ("1234567", "1,234,567", "123.4", "123万", str(LARGE_TRANSFER), "88,888,888", "330100"):
            assert figure not in page, figure
        relations = _texts(page, "relations")
        assert "张伟" in relations and "兴趣/理财" in relations and "代发开卡" in relations  # channel by state
        assert "高飞" in relations and "渠道/网点" in relations and "管理员/负责人分配" in relations
        assert "生日问候" in _texts(page, "tasks") and "到期提醒" in _texts(page, "tasks")
        assert "payroll-wealth" in _texts(page, "sent") and "第0条" in _texts(page, "sent")
        assert "fund-weekly" in _texts(page, "opened")
        details = re.findall(r'<tr data-entry="\d+">.*?</tr>', page, flags=re.S)
        assert [re.search(r"内容：(第\d+条)", d).group(1) for d in details] == pic.timeline[:100]  # type: ignore[union-attr]

        more = re.search(r'<p id="timeline-more"><a href="([^"]+)"', page)
        assert more is not None
        rest = await (await s.client.get(unescape(more.group(1)))).text()
        entries = re.findall(r'<tr data-entry="\d+"><td>[^<]*</td><td>([^<]*)</td><td>([^<]*)</td>', rest)
        assert [unescape(d).split("内容：")[-1] if "内容" in d else "" for _, d in entries] == pic.timeline[100:]
        assert entries[-1][0] == "CRM事件" and str(LARGE_TRANSFER) not in rest
        assert 'id="timeline-more"></p>' in rest  # the last page

        async with s.runtime.sessions() as db:
            views = (await db.scalars(select(ConsoleAudit.target).where(
                ConsoleAudit.actor == "zhouhai", ConsoleAudit.action == "view"))).all()
        assert views.count(pic.ext) == 2

        # The west team lead sees the west relation, its tags and card, not the east one's.
        await sign_in(s, "wangqiang")
        page = await (await s.client.get(f"/console/customers/{pic.ext}")).text()
        assert "兴趣/理财" in page and "渠道/网点" not in page and "高飞" not in _texts(page, "relations")
        assert "生日问候" in page and "到期提醒" not in page and 'id="hidden-relations"' in page
        await sign_in(s, "xuming")  # east: gaofei's past relation (transferred) still counts
        assert (await s.client.get(f"/console/customers/{pic.ext}")).status == 200

        for path, status in (("/console/customers/wmNOBODY", 404), ("/console/customers/a%20b", 400),
                             (f"/console/customers/{pic.ext}?before=xyz", 400)):
            resp = await s.client.get(path)
            assert resp.status == status and len((await resp.text()).strip().splitlines()) == 1, path


async def test_search_open_and_read_a_customer_in_the_browser(sqlite_url: str, tmp_path: Path,
                                                              browser: Browser) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    async with console_stack(sqlite_url, tmp_path, port=port) as s:
        pic = await seed_picture(s)
        context = await browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900})
        page = await context.new_page()
        await page.goto(f"{base}/console/")
        await page.click("#wecom-login")
        await page.get_by_role("link", name="周海（zhouhai）").click()
        await page.click("header nav >> text=客户")
        await page.fill('input[name="q"]', "WX")  # case-insensitive prefix of "wx张"
        await page.click("#customer-search button")
        await expect(page.get_by_role("link", name="wx张")).to_be_visible()
        await page.screenshot(path=str(screenshots_dir(tmp_path) / "console-customers.png"), full_page=True)
        await page.get_by_role("link", name="wx张").click()
        await expect(page.locator("#customer-name")).to_contain_text("张明远")  # the CRM's name first
        await expect(page.locator("#customer-name")).to_contain_text("微信名 wx张")
        await expect(page.locator("#relations")).to_contain_text("兴趣/理财")
        await expect(page.locator("#tasks")).to_contain_text("生日问候")
        await expect(page.locator("#attributes")).to_contain_text(AUM_BAND)
        rows = page.locator("#timeline-rows tr")
        await expect(rows).to_have_count(100)
        await page.screenshot(path=str(screenshots_dir(tmp_path) / "console-customer.png"))  # the top
        await page.click("#timeline-more a")  # htmx appends the older entries
        await expect(rows).to_have_count(len(pic.timeline))
        await expect(page.locator("#timeline-more a")).to_have_count(0)
        await context.close()
