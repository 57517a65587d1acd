"""Marketing consent per category: recorded from the sidebar (the customer told their manager) and
from the customer's own preference page, merged with the CRM's map by time (latest wins), and
honoured by the sidebar's offers like the opt-out tag."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from handlers.compliance.api import Said, consent_rows, record_consent
from handlers.compliance.consent import merged_consents
from handlers.compliance.models import CustomerConsent
from handlers.compliance.prefs import prefs_link, prefs_token
from handlers.console.models import ConsoleAudit
from scrm.playbook.suitability import DEFAULT_RULES
from tests.handlers.compliance.test_suitability import offered, set_crm, sidebar
from tests.handlers.sidebar.support import csrf_of, sign_in
from tests.handlers.sidebar.support import seed as seed_sidebar
from tests.support.stack import stack

T0 = datetime(2026, 5, 1, tzinfo=UTC)


def test_the_latest_statement_wins_over_the_crm_map_and_the_default_decides_the_rest() -> None:
    attrs = {"marketing_consent": {"wealth": False, "loans": True, "cards": "no"}}  # "no" is not a boolean
    said = {"wealth": Said(True, T0 + timedelta(days=1), "sidebar"),
            "loans": Said(False, T0 - timedelta(days=1), "preference")}
    assert merged_consents(attrs, T0, said, DEFAULT_RULES) == {"wealth": True, "loans": True}
    # Without the CRM's time its map is older than anything recorded.
    assert merged_consents(attrs, None, said, DEFAULT_RULES) == {"wealth": True, "loans": False}
    assert merged_consents({}, None, {}, DEFAULT_RULES) == {}


async def test_rows_are_read_latest_by_time_not_by_insertion(db_url: str, tmp_path: Path) -> None:
    async with stack(db_url, tmp_path, demo=False) as s, s.runtime.sessions() as db:
        async with db.begin():
            await record_consent(db, "wmA", "wealth", False, source="sidebar", at=T0 + timedelta(hours=2), by="zw")
            await record_consent(db, "wmA", "wealth", True, source="preference", at=T0 + timedelta(hours=1))
            await record_consent(db, "wmA", "events", True, source="preference", at=T0)
            await record_consent(db, "wmB", "wealth", True, source="crm", at=T0)
        got = await consent_rows(db, ["wmA", "wmB", "wmNobody"])
        assert {ext: {c: (x.granted, x.source) for c, x in cats.items()} for ext, cats in got.items()} == {
            "wmA": {"wealth": (False, "sidebar"), "events": (True, "preference")},
            "wmB": {"wealth": (True, "crm")}}


async def test_the_sidebar_records_what_the_customer_said_and_the_offers_follow(db_url: str, tmp_path: Path) -> None:
    async with sidebar(db_url, tmp_path) as s:
        demo = await seed_sidebar(s)
        await set_crm(s, "crm-wangfang", risk_level="C5", risk_expiry="2027-06-30")
        await sign_in(s, "zhangwei")
        chat = f"/sidebar/data/customer/{demo.wangfang}"
        assert {"p-wealth-r3", "p-loan"} <= await offered(s, chat)
        path = f"/sidebar/customer/{demo.wangfang}/consent"
        no_wealth = {"category": "wealth", "granted": False}
        assert (await s.client.post(path, json=no_wealth)).status == 403  # no CSRF token
        headers = {"X-CSRF-Token": await csrf_of(s)}
        for bad in ({"category": "crypto", "granted": False}, {"category": "wealth", "granted": "no"}, []):
            resp = await s.client.post(path, json=bad, headers=headers)
            assert resp.status == 400 and "body must be JSON" in (await resp.json())["error"], bad
        s.clock.advance(minutes=1)
        resp = await s.client.post(path, json=no_wealth, headers=headers)
        assert resp.status == 200, await resp.text()
        got = await offered(s, chat)
        assert "p-wealth-r3" not in got and "p-deposit-r1" not in got and "p-loan" in got
        async with s.runtime.sessions() as db:
            rows = (await db.scalars(select(CustomerConsent))).all()
            audit = (await db.scalars(select(ConsoleAudit).where(ConsoleAudit.action == "sidebar_consent"))).all()
        assert [(r.external_userid, r.category, r.granted, r.source, r.by, r.at) for r in rows] == [
            (demo.wangfang, "wealth", False, "sidebar", "zhangwei", s.clock.now())]
        assert [(a.actor, a.target) for a in audit] == [("zhangwei", f"customer:{demo.wangfang}")]
        # The CRM later says yes again: the newer statement wins.
        s.clock.advance(minutes=1)
        await set_crm(s, "crm-wangfang", marketing_consent={"wealth": True})
        assert "p-wealth-r3" in await offered(s, chat)
        # Another manager's customer: refused.
        await sign_in(s, "lina")
        resp = await s.client.post(path, json=no_wealth, headers={"X-CSRF-Token": await csrf_of(s)})
        assert resp.status == 403


async def test_the_preference_page_shows_and_saves_the_customers_choices(db_url: str, tmp_path: Path) -> None:
    async with sidebar(db_url, tmp_path) as s:
        demo = await seed_sidebar(s)
        await set_crm(s, "crm-wangfang", marketing_consent={"loans": False}, risk_level="C5", risk_expiry="2027-06-30")
        token = prefs_token(s.settings, demo.wangfang)
        assert prefs_token(s.settings, demo.wangfang) == token and demo.wangfang not in token
        assert prefs_link(s.settings, demo.wangfang).endswith("/prefs/" + token)
        page = await s.client.get(f"/prefs/{token}")
        text = await page.text()
        assert page.status == 200 and "营销信息偏好" in text and "<script" not in text and "http" not in text
        assert 'name="c_wealth" checked' in text and 'name="c_loans">' in text  # the CRM's no shows
        for wrong in (token[:-2] + ("AA" if not token.endswith("AA") else "BB"), "x", "A" * 500):
            assert (await s.client.get(f"/prefs/{wrong}")).status == 404
        assert (await s.client.post(f"/prefs/{token}", data={"c_crypto": "on"})).status == 400
        s.clock.advance(minutes=1)
        saved = await s.client.post(f"/prefs/{token}", data={"c_loans": "on", "c_events": "on"})
        text = await saved.text()
        assert saved.status == 200 and "已保存" in text
        assert 'name="c_wealth">' in text and 'name="c_loans" checked' in text
        async with s.runtime.sessions() as db:
            said = (await consent_rows(db, [demo.wangfang]))[demo.wangfang]
        assert {c: (x.granted, x.source) for c, x in said.items()} == {
            c: (c in ("loans", "events"), "preference") for c in DEFAULT_RULES.categories}
        await sign_in(s, "zhangwei")
        got = await offered(s, f"/sidebar/data/customer/{demo.wangfang}")
        assert "p-wealth-r3" not in got and "p-loan" in got
