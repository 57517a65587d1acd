"""The console's materials library: every material of the playbook with who approved it, until
when it is valid, where it may go, and its state today — worked out here from the YAML files
themselves — the same for every role; one material as the customer sees it (sample values
marked, the risk disclosure appended, the mini program's cover served from materials/)."""

from __future__ import annotations

import re
from datetime import date
from html import unescape
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from sqlalchemy import select

from handlers.console.models import ConsoleAudit
from tests.handlers.console.support import sign_in
from tests.handlers.console.test_calendar import console_on
from tests.support.playbooks import SOP_MATERIALS, write_shipped_playbook

TODAY = date(2026, 11, 2)  # the fake clock's first day in Shanghai
DISCLOSURE = "理财非存款，产品有风险，投资须谨慎。"  # sop/policy.yaml
EXTRA = """\
- id: m-hello
  type: text
  title: 问候
  channels: [private]
  text: "{customer.name}您好，我是{manager.name}。今天是{date.today}。"
  approved: {by: 合规部-甲, at: 2026-01-01}
  valid_until: 2026-11-16
- id: m-later
  type: text
  text: 十五天后到期。
  approved: {by: 合规部-乙, at: 2026-01-01}
  valid_until: 2026-11-17
- id: m-old
  type: text
  text: 已经过期。
  approved: {by: 合规部-乙, at: 2026-01-01}
  valid_until: 2026-11-01
- id: m-draft
  type: text
  text: 还没审批。
- id: m-future
  type: text
  text: 下个月才生效。
  approved: {by: 合规部-乙, at: 2026-12-01}
- id: m-wealth
  type: link
  channels: [private]
  risk_disclosure: true
  text: 一款低波动理财。
  link: {title: 稳健理财, desc: 说明书, url: "https://wealth.example.com/p"}
  approved: {by: 合规部-丙, at: 2026-10-01}
"""


def library(mat: Path) -> dict[str, dict[str, Any]]:
    """Every material of the YAML files, read here with a plain YAML parser."""
    out: dict[str, dict[str, Any]] = {}
    for f in sorted(mat.glob("*.yaml")):
        for item in YAML(typ="safe").load(f.read_text(encoding="utf-8")) or []:
            out[item["id"]] = item
    return out


def as_date(v: Any) -> date | None:
    return None if v is None else v if isinstance(v, date) else date.fromisoformat(str(v))


def expected_state(item: dict[str, Any]) -> str:
    approved, until = item.get("approved"), as_date(item.get("valid_until"))
    if approved is None or as_date(approved["at"]) > TODAY:  # type: ignore[operator]
        return "unapproved"
    if until is not None and until < TODAY:
        return "expired"
    if until is not None and (until - TODAY).days <= 14:
        return "expiring"
    return "approved"


def page_rows(page: str) -> dict[str, tuple[str, ...]]:
    """material id → (state, approved by, approved at, valid until, channels) as the list shows them."""
    rows = re.findall(r'<tr data-material="([^"]+)" data-state="([^"]+)">(.*?)</tr>', page, re.S)
    out = {}
    for mid, state, body in rows:
        cells = [unescape(re.sub(r"<[^>]+>", "", c)).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", body, re.S)]
        out[mid] = (state, cells[4], cells[5], cells[6], cells[3])
    return out


def text_of(html: str) -> str:
    return unescape(re.sub(r"<[^>]+>", "", html))


CHANNELS = {"group": "客户群", "private": "客户单聊", "manager": "客户经理"}


async def test_the_library_lists_every_material_with_its_state(db_url: str, tmp_path: Path) -> None:
    sop, mat = write_shipped_playbook(tmp_path / "pb", materials=SOP_MATERIALS + EXTRA)
    items = library(mat)
    want = {mid: (expected_state(m), m["approved"]["by"] if m.get("approved") else "—",
                  str(as_date(m["approved"]["at"])) if m.get("approved") else "—",
                  str(as_date(m["valid_until"])) if m.get("valid_until") else "长期",
                  "、".join(CHANNELS[c] for c in m.get("channels", ["private"])))
            for mid, m in items.items()}
    states = {w[0] for w in want.values()}
    assert states == {"approved", "expiring", "expired", "unapproved"}, states
    assert want["m-hello"][0] == "expiring" and want["m-later"][0] == "approved"
    async with console_on(db_url, tmp_path, (sop, mat)) as s:
        for userid in ("zhouhai", "xuming", "sunhui"):  # ops admin, team lead, auditor: one library
            await sign_in(s, userid)
            resp = await s.client.get("/console/materials")
            assert resp.status == 200, await resp.text()
            page = await resp.text()
            assert page_rows(page) == want
            counts = dict(re.findall(r'data-count="(\w+)"><span>[^<]*</span><b>(\d+)</b>', page))
            assert counts == {k: str(sum(w[0] == k for w in want.values()))
                              for k in ("approved", "expiring", "expired", "unapproved")}
        async with s.runtime.sessions() as db:
            views = (await db.execute(select(ConsoleAudit.actor, ConsoleAudit.target)
                                      .where(ConsoleAudit.action == "view").order_by(ConsoleAudit.id))).all()
        assert [tuple(v) for v in views] == [(u, "/console/materials") for u in ("zhouhai", "xuming", "sunhui")]


async def test_a_material_as_the_customer_sees_it(db_url: str, tmp_path: Path) -> None:
    sop, mat = write_shipped_playbook(tmp_path / "pb", materials=SOP_MATERIALS + EXTRA)
    async with console_on(db_url, tmp_path, (sop, mat)) as s:
        await sign_in(s, "xuming")
        page = await (await s.client.get("/console/materials/m-hello")).text()
        bubble = re.search(r'<div class="bubble" data-role="text">(.*?)</div>', page, re.S)
        assert bubble is not None, page
        # Sample values for the customer and the manager (marked), today's real date.
        assert text_of(bubble.group(1)) == "张先生您好，我是李娜。今天是11月2日。"
        assert [text_of(m) for m in re.findall(r'<mark class="sample"[^>]*>(.*?)</mark>', bubble.group(1))] == [
            "张先生", "李娜"]
        assert 'data-state="expiring"' in page and "2026-11-16" in page and "合规部-甲" in page
        samples = re.search(r'data-role="samples">(.*?)</p>', page, re.S)
        assert samples is not None
        assert "客户称呼“张先生”" in samples.group(1) and "客户经理姓名“李娜”" in samples.group(1)

        wealth = await (await s.client.get("/console/materials/m-wealth")).text()
        text = re.search(r'<div class="bubble" data-role="text">(.*?)</div>', wealth, re.S)
        assert text is not None and text_of(text.group(1)) == f"一款低波动理财。\n{DISCLOSURE}"
        assert 'data-role="link"' in wealth and "稳健理财" in wealth and "https://wealth.example.com/p" in wealth

        mini = await (await s.client.get("/console/materials/t-mini")).text()
        assert 'data-role="miniprogram"' in mini and 'src="/console/materials/t-mini/media"' in mini
        cover = await s.client.get("/console/materials/t-mini/media")
        assert cover.status == 200 and await cover.read() == (mat / "covers" / "topup.png").read_bytes()

        for url in ("/console/materials/no-such-thing", "/console/materials/m-hello/media",
                    "/console/materials/%2E%2E/media"):
            resp = await s.client.get(url)
            assert resp.status == 404, url
            body = await resp.text()
            assert len(body.splitlines()) == 1 and "Traceback" not in body, body
        async with s.runtime.sessions() as db:
            targets = (await db.scalars(select(ConsoleAudit.target).where(ConsoleAudit.action == "view")
                                        .order_by(ConsoleAudit.id))).all()
        assert targets == ["/console/materials/m-hello", "/console/materials/m-wealth", "/console/materials/t-mini"]


async def test_the_materials_pages_need_a_signed_in_viewer(sqlite_url: str, tmp_path: Path) -> None:
    sop, mat = write_shipped_playbook(tmp_path / "pb", materials=SOP_MATERIALS + EXTRA)
    async with console_on(sqlite_url, tmp_path, (sop, mat)) as s:
        for url in ("/console/materials", "/console/materials/m-hello", "/console/materials/t-mini/media",
                    "/console/calendar"):
            resp = await s.client.get(url, allow_redirects=False)
            assert resp.status == 303 and resp.headers["Location"] == "/console/login", url

