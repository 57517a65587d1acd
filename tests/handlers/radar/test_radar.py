"""Radar over HTTP against the sandbox: clicks, tags, alerts, OAuth identity, refusals."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import aiohttp
from sqlalchemy import func, select

from handlers.radar.links import record_send
from handlers.radar.models import RadarClick
from handlers.radar.stats import counters
from handlers.timeline.models import Timeline
from tests.handlers.radar.data import MATERIALS, ROUTERS, radar
from tests.handlers.radar.legacy import sign_v1
from tests.support.stack import Stack, stack

TARGET = "https://bank.example.com/fund?week=47"


async def _clicks(s: Stack) -> list[RadarClick]:
    async with s.runtime.sessions() as session:
        return list((await session.scalars(select(RadarClick).order_by(RadarClick.id))).all())


async def test_one_to_one_link_tags_once_and_alerts_once_per_hour(db_url: str, tmp_path: Path) -> None:
    async with stack(db_url, tmp_path, materials=MATERIALS, routers=ROUTERS, customers=True, sections=radar()) as s:
        ext = s.ids.customers["王芳"]
        link = s.links.make_link("m-fund", "zhangwei", customer=ext, occurrence="sop:onboard:day3@2026-11-23")
        assert link.startswith(s.settings.server.public_url + "/r/")
        async with s.runtime.sessions() as session, session.begin():
            assert await record_send(session, s.links, link, s.clock.now())
        for _ in range(5):
            assert await s.open(link) == (302, TARGET)
            s.clock.advance(minutes=5)
        await s.run()
        interest = s.ids.tags["兴趣/理财"]
        assert interest in s.tag_ids("zhangwei", ext)
        assert len(s.state.received_calls("externalcontact/mark_tag")) == 1
        alerts = s.app_messages("zhangwei")
        assert len(alerts) == 1 and "王芳" in alerts[0] and "《稳健理财周报》" in alerts[0]
        # An hour after the alert: the next click alerts again and says how often today.
        s.clock.advance(minutes=40)
        assert (await s.open(link))[0] == 302
        await s.run()
        alerts = s.app_messages("zhangwei")
        assert len(alerts) == 2 and "第 6 次" in alerts[1]
        assert len(await _clicks(s)) == 6
        async with s.runtime.sessions() as session:
            timeline = await session.scalar(select(func.count()).select_from(Timeline).where(
                Timeline.subject_id == ext, Timeline.kind == "radar.click"))
            [row] = await counters(session, material="m-fund")
            [step] = await counters(session, by_step=True)
        assert timeline == 6
        assert (row.sends, row.opens, row.unique_openers, row.open_rate) == (1, 6, 1, 1.0)
        assert step.step == "sop:onboard:day3"
        # The digest tells the manager about the 4 clicks that had no alert of their own.
        from handlers.radar.events import RadarDigest

        await s.runtime.inbox.put_internal(RadarDigest(at=s.clock.now()), "d1")
        await s.run()
        digest = s.app_messages("zhangwei")[-1]
        assert "汇总" in digest and "4 次" in digest


async def test_group_link_with_oauth_finds_the_customer(db_url: str, tmp_path: Path) -> None:
    async with stack(db_url, tmp_path, materials=MATERIALS, routers=ROUTERS, customers=True,
                     sections=radar(oauth=True)) as s:
        ext = s.ids.customers["孙丽"]  # followed by lina, not the sender
        link = s.links.make_link("m-fund", "zhangwei", occurrence="group:payroll@2026-11-23")
        status, authorize = await s.open(link)
        assert status == 302 and authorize.startswith(s.sandbox_base + "/connect/oauth2/authorize?")
        q = parse_qs(urlsplit(authorize).query)
        assert q["scope"] == ["snsapi_base"] and q["appid"] == [s.settings.wecom.corp_id]
        assert q["agentid"] == [str(s.settings.wecom.agent_id)]
        async with aiohttp.ClientSession() as http:
            resp = await http.get(authorize.split("#")[0] + f"&sandbox_viewer={ext}", allow_redirects=False)
            back = resp.headers["Location"]
        assert resp.status == 302 and "code=" in back
        back_url = urlsplit(back)
        resp2 = await s.client.get(back_url.path + "?" + back_url.query, allow_redirects=False)
        assert resp2.status == 302 and resp2.headers["Location"] == TARGET
        await s.run()
        [click] = await _clicks(s)
        assert click.external_userid == ext and click.sender == "zhangwei"
        assert s.ids.tags["兴趣/理财"] in s.tag_ids("lina", ext)  # tagged by the member who has her


async def test_members_own_click_is_not_counted(db_url: str, tmp_path: Path) -> None:
    async with stack(db_url, tmp_path, materials=MATERIALS, routers=ROUTERS, customers=True,
                     sections=radar(oauth=True)) as s:
        link = s.links.make_link("m-fund", "zhangwei", customer=s.ids.customers["王芳"])
        _, authorize = await s.open(link)
        async with aiohttp.ClientSession() as http:
            resp = await http.get(authorize.split("#")[0] + "&sandbox_viewer=zhangwei", allow_redirects=False)
        back = urlsplit(resp.headers["Location"])
        resp2 = await s.client.get(back.path + "?" + back.query, allow_redirects=False)
        assert resp2.status == 302 and resp2.headers["Location"] == TARGET
        await s.run()
        assert await _clicks(s) == []
        assert s.app_messages("zhangwei") == []


async def test_anonymous_click_without_oauth_is_an_open_without_opener(db_url: str, tmp_path: Path) -> None:
    async with stack(db_url, tmp_path, materials=MATERIALS, routers=ROUTERS, customers=True, sections=radar()) as s:
        link = s.links.make_link("m-fund", "zhangwei", occurrence="group:payroll@2026-11-23")
        assert await s.open(link) == (302, TARGET)
        await s.run()
        [click] = await _clicks(s)
        assert click.external_userid is None
        assert s.app_messages("zhangwei") == [] and s.state.received_calls("externalcontact/mark_tag") == []


async def test_a_link_minted_in_the_old_format_still_redirects_and_counts(db_url: str, tmp_path: Path) -> None:
    """Links sent before tokens became opaque live on in chats: they still work and count."""
    async with stack(db_url, tmp_path, materials=MATERIALS, routers=ROUTERS, customers=True, sections=radar()) as s:
        ext = s.ids.customers["王芳"]
        occurrence = "sop:onboard:day3@2026-11-23"
        old = s.links.base + sign_v1(s.links.key, "m-fund", "zhangwei", customer=ext, occurrence=occurrence)
        async with s.runtime.sessions() as session, session.begin():
            assert await record_send(session, s.links, old, s.clock.now())  # what the old code recorded
        new = s.links.make_link("m-fund", "zhangwei", customer=ext, occurrence=occurrence)
        assert "." not in new.rsplit("/", 1)[1] and new != old
        assert await s.open(old) == (302, TARGET)
        await s.run()
        [click] = await _clicks(s)
        assert (click.material_id, click.sender, click.external_userid, click.occurrence) == (
            "m-fund", "zhangwei", ext, occurrence)
        async with s.runtime.sessions() as session:
            [row] = await counters(session, material="m-fund")
        assert (row.sends, row.opens, row.unique_openers) == (1, 1, 1)
        assert len(s.app_messages("zhangwei")) == 1  # reacted to like any click

async def test_tampered_and_forged_tokens_get_404(db_url: str, tmp_path: Path) -> None:
    async with stack(db_url, tmp_path, materials=MATERIALS, routers=ROUTERS, customers=True, sections=radar()) as s:
        link = s.links.make_link("m-fund", "zhangwei", customer=s.ids.customers["王芳"])
        token = link.rsplit("/", 1)[1]
        middle = len(token) // 2
        flipped = token[:middle] + ("A" if token[middle] != "A" else "B") + token[middle + 1:]
        old = sign_v1(s.links.key, "m-fund", "zhangwei", customer=s.ids.customers["王芳"])
        payload, mac = old.split(".")
        for bad in (flipped, token[:-1], token + "A", f"{payload}.{mac[:-1]}", payload, "x" * 5000, "..", "%00"):
            resp = await s.client.get(f"/r/{bad}", allow_redirects=False)
            assert resp.status == 404, bad
            assert "Location" not in resp.headers
        await s.run()
        assert await _clicks(s) == []


async def test_target_that_is_not_a_link_material_is_never_reached(db_url: str, tmp_path: Path) -> None:
    async with stack(db_url, tmp_path, materials=MATERIALS, routers=ROUTERS, customers=True, sections=radar()) as s:
        for material in ("m-plain", "no-such-material", "https://evil.example.com"):
            link = s.links.make_link(material, "zhangwei")
            status, location = await s.open(link)
            assert (status, location) == (404, "")
        # Query parameters cannot steer the redirect either.
        link = s.links.make_link("m-fund", "zhangwei")
        assert await s.open(link, url="https://evil.example.com", next="https://evil.example.com") == (302, TARGET)
