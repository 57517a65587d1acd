"""Suitability (适当性) and consent, end to end on the sandbox: a product material reaches only the
customers whose risk assessment allows it and who consent to its category; every other planned
send is skipped with its reason, a change between planning and sending is refused at send time,
and the sidebar neither offers such a material nor records a forged send of it."""

from __future__ import annotations

import contextlib
import time as wall
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from handlers.compliance.api import record_consent
from handlers.compliance.models import TrailRecord
from handlers.crm.models import CrmCustomer
from tests.handlers.sidebar.support import MATERIALS as SIDEBAR_MATERIALS
from tests.handlers.sidebar.support import START as SIDEBAR_START
from tests.handlers.sidebar.support import csrf_of, sign_in
from tests.handlers.sidebar.support import seed as seed_sidebar
from tests.handlers.sop.seeding import ROUTERS, local, seed
from tests.support.playbooks import APPROVED, SOP_MATERIALS, write_shipped_playbook
from tests.support.service import drain
from tests.support.stack import Stack, stack

ADDED = local("2026-11-01", "12:00")
START = local("2026-11-02", "09:00")  # a Monday; the path's step is "added_at + 1 day" at 10:00
SEND_AT = local("2026-11-02", "10:00")
PRODUCT = f"""\
- id: t-wealth-r3
  type: text
  channels: [private]
  text: 稳健型理财新品（R3）本周开放认购。
  risk_level: R3
  product_category: wealth
  {APPROVED}
"""
PATH = """\
path: product
name: 产品推荐
when: {}
steps:
  - {id: offer, on: "added_at + 1 day", at: "10:00", send: t-wealth-r3}
"""
VALID = "2027-06-30"  # after the fake clock's day: current
EXPIRED = "2026-10-31"  # before it


def population() -> tuple[dict[str, dict[str, Any]], dict[str, str], set[str]]:
    """100 customers: (CRM records, the reason-prefix of each one who must be skipped, those who
    withdrew wealth consent in the sidebar after the CRM's record)."""
    crm: dict[str, dict[str, Any]] = {}
    bad: dict[str, str] = {}
    sidebar_no: set[str] = set()
    for i in range(100):
        ext = f"wmCust{i:03d}"
        level = f"C{3 + i % 3}"
        attrs: dict[str, Any] = {"name": ext, "risk_level": level, "risk_expiry": VALID}
        if i % 10 == 0:
            kind = (i // 10) % 5
            if kind == 0:
                attrs["risk_level"] = "C2"
                bad[ext] = "suitability: R3 > C2"
            elif kind == 1:
                attrs["risk_expiry"] = EXPIRED
                bad[ext] = f"suitability: risk assessment {level} expired on {EXPIRED}"
            elif kind == 2:
                del attrs["risk_level"], attrs["risk_expiry"]
                bad[ext] = "suitability: no risk assessment"
            elif kind == 3:
                attrs["marketing_consent"] = {"wealth": False, "events": True}
                bad[ext] = "consent: wealth withdrawn"
            else:
                sidebar_no.add(ext)
                bad[ext] = "consent: wealth withdrawn"
        elif i % 10 == 5:
            attrs["marketing_consent"] = {"wealth": True}  # an explicit yes changes nothing
        crm[ext] = attrs
    return crm, bad, sidebar_no


def playbook(tmp_path: Path) -> tuple[Path, Path]:
    sop, mat = write_shipped_playbook(tmp_path, paths={"product": PATH}, materials=SOP_MATERIALS + PRODUCT)
    # Content-bound approvals (claims.yaml) have their own tests; these materials are signed off plainly.
    (sop / "compliance" / "claims.yaml").unlink(missing_ok=True)
    return sop, mat


async def confirm_all(b: Stack, userid: str = "zhangwei") -> None:
    """The manager confirms every 1:1 mass-send task in WeCom (what makes it reach the customer)."""
    for msgid in list(b.state.msg_templates):
        b.state.confirm_msg_task(msgid, userid, b.clock.now().timestamp())


def delivered_to(b: Stack, ext: str) -> list[str]:
    return [str(d.content.get("text", {}).get("content", "")) for d in b.state.delivered_messages(kind="mass", to=ext)]


async def test_ten_percent_violating_none_leaves_each_skip_has_its_reason(db_url: str, tmp_path: Path) -> None:
    crm, bad, sidebar_no = population()
    assert len(bad) == 10
    began = wall.perf_counter()
    async with stack(db_url, tmp_path, start=START, demo=False, routers=ROUTERS, playbook=playbook(tmp_path)) as b:
        await seed(b, customers=sorted(crm), added=ADDED, crm=crm)
        async with b.runtime.sessions() as db, db.begin():
            for ext in sidebar_no:  # told the manager after the CRM's record: the latest statement wins
                await record_consent(db, ext, "wealth", False, source="sidebar", at=ADDED + timedelta(hours=1),
                                     by="zhangwei")
        await b.run_until(SEND_AT + timedelta(minutes=5))
        await confirm_all(b)
        for ext in sorted(crm):
            got = delivered_to(b, ext)
            if ext in bad:
                assert got == [], ext
            else:
                assert got == ["稳健型理财新品（R3）本周开放认购。"], ext
        skips = {o.occurrence_key.split(":")[0]: o.reason or "" for o in await b.occurrences("skipped")
                 if o.job_key == "sop:path:product:offer"}
        assert set(skips) == set(bad)
        for ext, prefix in bad.items():
            assert skips[ext].startswith(prefix), (ext, skips[ext])
        # The trail says why each one that went out was allowed.
        async with b.runtime.sessions() as db:
            records = (await db.scalars(select(TrailRecord))).all()
        assert sorted(r.audience[0] for r in records) == sorted(set(crm) - set(bad))
        level_of = {ext: crm[ext].get("risk_level") for ext in crm}
        for r in records:
            ext = r.audience[0]
            assert f"suitability: R3 ≤ {level_of[ext]} (valid until {VALID})" in r.decisions
            assert "consent: wealth" in r.decisions
    print(f"simulation: {wall.perf_counter() - began:.1f} s")


async def test_consent_withdrawn_between_plan_and_send_is_refused_at_send_time(db_url: str, tmp_path: Path) -> None:
    crm = {ext: {"name": ext, "risk_level": "C4", "risk_expiry": VALID} for ext in ("wmStays", "wmWithdraws",
                                                                                    "wmReassessed")}
    async with stack(db_url, tmp_path, start=START, demo=False, routers=ROUTERS, playbook=playbook(tmp_path)) as b:
        await seed(b, customers=sorted(crm), added=ADDED, crm=crm)
        b.clock.set(SEND_AT + timedelta(minutes=1))
        await b.runtime.scheduler.tick()
        await drain(b.runtime)  # planned and queued; nothing sent yet
        rows = await b.outbox_rows("externalcontact/add_msg_template")
        assert sorted(r.payload["body"]["external_userid"][0] for r in rows) == sorted(crm)
        async with b.runtime.sessions() as db, db.begin():
            await record_consent(db, "wmWithdraws", "wealth", False, source="preference", at=b.clock.now())
            record = await db.get(CrmCustomer, "crm-wmReassessed")
            assert record is not None
            record.attributes = {**record.attributes, "risk_level": "C2"}
            record.updated_at = b.clock.now()
        await b.send()
        await confirm_all(b)
        assert delivered_to(b, "wmStays") == ["稳健型理财新品（R3）本周开放认购。"]
        assert delivered_to(b, "wmWithdraws") == [] and delivered_to(b, "wmReassessed") == []
        by_ext = {r.payload["body"]["external_userid"][0]: r for r in await b.outbox_rows(
            "externalcontact/add_msg_template")}
        assert by_ext["wmStays"].status == "sent"
        assert by_ext["wmWithdraws"].status == "failed"
        assert "consent: wealth withdrawn" in (by_ext["wmWithdraws"].last_error or "")
        assert by_ext["wmReassessed"].status == "failed"
        assert "suitability: R3 > C2" in (by_ext["wmReassessed"].last_error or "")
        # What reached WeCom never carried the re-check's note.
        assert all("_suitability" not in c.body for c in b.calls("externalcontact/add_msg_template"))


# -- the sidebar -----------------------------------------------------------------------------------

SIDEBAR_PRODUCTS = f"""\
- id: p-wealth-r3
  type: text
  title: 稳健理财R3
  channels: [private, group]
  text: 稳健型理财新品（R3）本周开放认购。
  risk_level: R3
  product_category: wealth
  {APPROVED}
- id: p-deposit-r1
  type: text
  title: 存款产品R1
  channels: [private, group]
  text: 大额存单今日发售。
  risk_level: R1
  product_category: wealth
  {APPROVED}
- id: p-loan
  type: text
  title: 消费贷
  channels: [private]
  text: 消费贷限时利率优惠。
  product_category: loans
  {APPROVED}
"""


@contextlib.asynccontextmanager
async def sidebar(db_url: str, root: Path) -> AsyncIterator[Stack]:
    sop, mat = write_shipped_playbook(root, materials=SIDEBAR_MATERIALS + SIDEBAR_PRODUCTS)
    (sop / "compliance" / "claims.yaml").unlink(missing_ok=True)
    async with stack(db_url, root, start=SIDEBAR_START, playbook=(sop, mat),
                     sections={"server": {"public_url": "http://127.0.0.1:8080"}}) as s:
        yield s


async def set_crm(s: Stack, crm_id: str, **attrs: Any) -> None:
    async with s.runtime.sessions() as db, db.begin():
        record = await db.get(CrmCustomer, crm_id)
        assert record is not None
        record.attributes = {**record.attributes, **attrs}
        record.updated_at = s.clock.now()


async def offered(s: Stack, path: str) -> set[str]:
    resp = await s.client.get(path)
    assert resp.status == 200, await resp.text()
    return {o["material"] for o in (await resp.json())["offers"]}


async def test_the_sidebar_offers_products_only_to_suitable_consenting_customers(db_url: str, tmp_path: Path) -> None:
    async with sidebar(db_url, tmp_path) as s:
        demo = await seed_sidebar(s)
        await sign_in(s, "zhangwei")
        chat = f"/sidebar/data/customer/{demo.wangfang}"
        products = {"p-wealth-r3", "p-deposit-r1"}
        # No assessment in the CRM: no risk-rated product; the loan (no risk level) is offered.
        got = await offered(s, chat)
        assert not got & products and "p-loan" in got and "s-hours" in got
        await set_crm(s, "crm-wangfang", risk_level="C2", risk_expiry=VALID)
        got = await offered(s, chat)
        assert "p-deposit-r1" in got and "p-wealth-r3" not in got
        await set_crm(s, "crm-wangfang", risk_level="C3")
        assert products <= await offered(s, chat)
        await set_crm(s, "crm-wangfang", risk_expiry="2026-11-01")  # expired yesterday
        assert not (await offered(s, chat)) & products
        await set_crm(s, "crm-wangfang", risk_expiry=VALID, marketing_consent={"wealth": False})
        got = await offered(s, chat)
        assert not got & products and "p-loan" in got

        # A send the page claims it made of a product this customer may not get is refused.
        headers = {"X-CSRF-Token": await csrf_of(s)}
        path = f"/sidebar/customer/{demo.wangfang}/sent"
        forged = await s.client.post(path, json={"material": "p-wealth-r3", "link": ""}, headers=headers)
        assert forged.status == 400 and "consent: wealth withdrawn" in (await forged.json())["error"]
        await set_crm(s, "crm-wangfang", marketing_consent={"wealth": True}, risk_level="C2")
        forged = await s.client.post(path, json={"material": "p-wealth-r3", "link": ""}, headers=headers)
        assert forged.status == 400 and "suitability: R3 > C2" in (await forged.json())["error"]
        ok = await s.client.post(path, json={"material": "p-deposit-r1", "link": ""}, headers=headers)
        assert ok.status == 200, await ok.text()
        async with s.runtime.sessions() as db:
            trail = (await db.scalars(select(TrailRecord))).all()
        assert [t.material for t in trail] == ["p-deposit-r1"]
        assert f"suitability: R1 ≤ C2 (valid until {VALID})" in trail[0].decisions

        # In a group nobody is checked one by one: only up to group_max_risk (R1 as shipped).
        group = await offered(s, f"/sidebar/data/group/{demo.payroll_group}")
        assert "p-deposit-r1" in group and "p-wealth-r3" not in group
        forged = await s.client.post(f"/sidebar/group/{demo.payroll_group}/sent",
                                     json={"material": "p-wealth-r3", "link": ""}, headers=headers)
        assert forged.status == 400


TASK_MATERIAL = f"""\
- id: t-pitch-r3
  type: text
  title: 推荐稳健理财
  channels: [manager]
  text: 请向{{customer.name}}介绍稳健型理财新品（R3）。
  risk_level: R3
  product_category: wealth
  {APPROVED}
"""
TASK_PATH = """\
path: pitch
name: 理财推荐任务
when: {}
steps:
  - {id: pitch, on: "added_at + 1 day", at: "10:00", task: t-pitch-r3}
"""


async def test_a_product_task_for_an_unsuitable_customer_is_not_issued_and_the_manager_is_told(
        db_url: str, tmp_path: Path) -> None:
    sop, mat = write_shipped_playbook(tmp_path, paths={"pitch": TASK_PATH}, materials=SOP_MATERIALS + TASK_MATERIAL)
    (sop / "compliance" / "claims.yaml").unlink(missing_ok=True)
    crm = {"wmFits": {"name": "合适客户", "risk_level": "C4", "risk_expiry": VALID},
           "wmLow": {"name": "保守客户", "risk_level": "C2", "risk_expiry": VALID}}
    async with stack(db_url, tmp_path, start=START, demo=False, routers=ROUTERS, playbook=(sop, mat)) as b:
        await seed(b, customers=sorted(crm), added=ADDED, crm=crm)
        await b.run_until(SEND_AT + timedelta(minutes=5))
        assert [t.target for t in await b.tasks()] == ["wmFits"]
        told = [n for n in b.notices("zhangwei") if "未下发" in n]
        assert told == ["任务「推荐稳健理财」未下发：客户保守客户的风险承受等级C2低于产品风险等级R3。"
                        "适当性规定不允许向其推荐该产品。"]
        [skip] = [o for o in await b.occurrences("skipped") if o.job_key == "sop:path:pitch:pitch"]
        assert skip.occurrence_key.startswith("wmLow:") and (skip.reason or "").startswith("suitability: R3 > C2")
