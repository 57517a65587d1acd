"""The sidebar over HTTP, on SQLite and PostgreSQL: signing in through WeCom OAuth, the
agentConfig signature from the app's jsapi ticket, who may see a chat's panels, the JSON behind
each panel, recording a send, and settling a task as the card's button would."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from sqlalchemy import select

from handlers.compliance.models import TrailRecord
from handlers.console.models import ConsoleAudit
from handlers.contacts.models import Follow
from handlers.radar.models import RadarSend
from handlers.sop.api import SopTask
from handlers.timeline.models import Timeline
from tests.handlers.sidebar.support import AUM_FIGURES, Demo, csrf_of, seed, sidebar_stack, sign_in, transfer_card
from tests.support.stack import Stack

PAGE = "http://127.0.0.1:8080/sidebar/"
NEVER_OFFERED = {"s-expired", "s-unapproved", "s-not-yet", "s-manager-only"}


def sha1_signature(ticket: str, nonce: str, timestamp: int, url: str) -> str:
    """WeCom's JS-SDK signature, written out from its documentation."""
    return hashlib.sha1(f"jsapi_ticket={ticket}&noncestr={nonce}&timestamp={timestamp}&url={url}".encode()).hexdigest()


async def data(s: Stack, path: str) -> tuple[int, dict[str, Any]]:
    resp = await s.client.get(path)
    return resp.status, json.loads(await resp.text())


async def last_contact(s: Stack, userid: str, ext: str) -> datetime | None:
    async with s.runtime.sessions() as db:
        return await db.scalar(select(Follow.last_contact_at).where(Follow.userid == userid,
                                                                     Follow.external_userid == ext))


async def timeline(s: Stack, subject: str) -> list[Timeline]:
    async with s.runtime.sessions() as db:
        return list((await db.scalars(select(Timeline).where(Timeline.subject_id == subject)
                                      .order_by(Timeline.id))).all())


async def test_a_member_signs_in_through_oauth_and_nobody_else(db_url: str, tmp_path: Path) -> None:
    async with sidebar_stack(db_url, tmp_path) as s:
        start = await s.client.get("/sidebar/", allow_redirects=False)
        assert start.status == 302
        target = urlsplit(start.headers["Location"])
        assert target.fragment == "wechat_redirect"
        assert f"{target.scheme}://{target.netloc}{target.path}" == s.sandbox_base + "/connect/oauth2/authorize"
        query = {k: v[0] for k, v in parse_qs(target.query).items()}
        assert {k: v for k, v in query.items() if k != "state"} == {
            "appid": s.settings.wecom.corp_id, "redirect_uri": PAGE + "oauth", "response_type": "code",
            "scope": "snsapi_base", "agentid": str(s.settings.wecom.agent_id)}
        assert len(query["state"]) >= 16
        # Nothing else answers without a session.
        for path in ("/sidebar/data/customer/wmx", "/sidebar/signature?url=" + PAGE):
            resp = await s.client.get(path)
            assert resp.status == 401 and (await resp.json())["error"].startswith("not signed in")

        # A customer (WeChat user) reaching the page through OAuth is not a member.
        refused = await sign_in(s, s.ids.customers["王芳"])
        assert refused.status == 403 and "只有本行员工" in await refused.text()
        # A code brought back without this browser's state (login CSRF) is refused.
        forged = await s.client.get(f"/sidebar/oauth?code={s.server.issue_oauth_code('zhangwei')}&state=abc")
        assert forged.status == 400

        signed = await sign_in(s, "zhangwei")
        assert (signed.status, signed.headers["Location"]) == (303, "/sidebar/")
        page = await (await s.client.get("/sidebar/")).text()
        assert 'id="viewer">张伟<' in page
        assert f'<script src="{s.sandbox_base}/sandbox/ww.js">' in page  # the sandbox's webview harness


async def test_agent_config_is_signed_with_the_cached_jsapi_ticket(db_url: str, tmp_path: Path) -> None:
    async with sidebar_stack(db_url, tmp_path) as s:
        await sign_in(s, "zhangwei")
        first = await (await s.client.get("/sidebar/signature", params={"url": PAGE})).json()
        ticket = s.state.jssdk.ticket
        assert ticket is not None
        assert first["signature"] == sha1_signature(ticket.value, first["nonceStr"], first["timestamp"], PAGE)
        assert first["timestamp"] == int(s.clock.now().timestamp())
        # The sandbox's webview accepts it; a signature for another URL or a made-up one it refuses.
        view = s.state.jssdk.open("zhangwei", customer=s.ids.customers["王芳"])
        now = s.clock.now().timestamp()
        assert s.state.jssdk.check(view, url=PAGE, noncestr=first["nonceStr"], timestamp=str(first["timestamp"]),
                                   signature=first["signature"], now=now)
        assert not s.state.jssdk.check(view, url=PAGE + "x", noncestr=first["nonceStr"],
                                       timestamp=str(first["timestamp"]), signature=first["signature"], now=now)
        # Cached: a second page view fetches no new ticket; after it expires, one new fetch.
        await s.client.get("/sidebar/signature", params={"url": PAGE + "?again=1"})
        assert len(s.calls("ticket/get")) == 1
        s.clock.advance(hours=2)
        later = await (await s.client.get("/sidebar/signature", params={"url": PAGE})).json()
        assert len(s.calls("ticket/get")) == 2
        fresh = s.state.jssdk.ticket
        assert fresh is not None and fresh.value != ticket.value
        assert later["signature"] == sha1_signature(fresh.value, later["nonceStr"], later["timestamp"], PAGE)
        # Only the sidebar's own pages are signed.
        for url in ("https://evil.example/sidebar/", "http://127.0.0.1:8080/console/", PAGE + "#frag"):
            resp = await s.client.get("/sidebar/signature", params={"url": url})
            assert resp.status == 400 and "url must be a page under" in (await resp.json())["error"]


async def test_the_customer_panels_show_what_the_bank_knows(db_url: str, tmp_path: Path) -> None:
    async with sidebar_stack(db_url, tmp_path) as s:
        demo = await seed(s)
        await sign_in(s, "zhangwei")
        status, body = await data(s, f"/sidebar/data/customer/{demo.wangfang}")
        assert status == 200
        assert body["who"] == {
            "name": "王芳", "remark": "王芳-代发", "tier": "V3", "segment": "代发员工", "products": ["代发", "理财"],
            "aum_band": "50万-600万", "tags": ["客户等级/V1", "兴趣/理财"], "since": "2026-06-01",
            "channel": "代发开卡", "managers": ["张伟"]}
        assert body["tasks"] == []
        offered = {o["material"]: o for o in body["offers"]}
        assert {"s-weekly", "s-hours"} <= offered.keys()
        assert not NEVER_OFFERED & offered.keys() and "s-group-hello" not in offered
        # Reminder scripts come only with their open task; welcome messages are not offered later.
        assert not {"script-birthday-greeting", "script-reconnect", "welcome-default"} & offered.keys()
        weekly = offered["s-weekly"]
        assert weekly["messages"][0] == {"msgtype": "text", "text": {"content": "您好，我是张伟，本周理财精选请查收。"}}
        news = weekly["messages"][1]
        assert news["msgtype"] == "news" and news["news"]["link"] == weekly["link"]
        claims = s.links.claims_of(weekly["link"])
        assert claims is not None and (claims.material, claims.sender, claims.customer) == (
            "s-weekly", "zhangwei", demo.wangfang)
        assert offered["s-hours"]["messages"] == [
            {"msgtype": "text", "text": {"content": "王芳，本周营业时间不变，有事随时找我。"}}]
        # The interest tag 兴趣/理财 puts the materials about it ahead of the rest.
        library = [o["material"] for o in body["offers"]]
        assert library.index("s-weekly") < library.index("s-hours")
        # AUM leaves the server only as its band, in the JSON and in the HTML panels.
        html = await (await s.client.get(f"/sidebar/customer/{demo.wangfang}")).text()
        for text in (json.dumps(body, ensure_ascii=False), html):
            assert not any(figure in text for figure in AUM_FIGURES)
        assert 'id="tier">V3<' in html and "50万-600万" in html and "兴趣/理财" in html


async def refusal(s: Stack, path: str) -> tuple[int, str]:
    resp = await s.client.get(path)
    return resp.status, await resp.text()


async def test_only_the_customers_managers_and_their_lead_see_the_panels(db_url: str, tmp_path: Path) -> None:
    async with sidebar_stack(db_url, tmp_path) as s:
        demo: Demo = await seed(s)
        await sign_in(s, "lina")
        assert (await data(s, f"/sidebar/data/customer/{demo.sunli}"))[0] == 200
        not_hers = await refusal(s, f"/sidebar/data/customer/{demo.wangfang}")
        assert not_hers[0] == 403 and "客户经理" in not_hers[1]
        # A relation that ended (the customer deleted lina) opens nothing either.
        assert (await refusal(s, f"/sidebar/data/customer/{s.ids.customers['刘洋']}"))[0] == 403
        # A made-up id is refused exactly like a real customer of someone else: nothing leaks.
        assert await refusal(s, "/sidebar/data/customer/wmForged0000000000000") == not_hers
        html = await refusal(s, f"/sidebar/customer/{demo.wangfang}")
        assert html[0] == 403 and 'id="refused"' in html[1]
        bad = await refusal(s, "/sidebar/data/customer/wm%20x")
        assert bad[0] == 400 and "not a WeCom id" in bad[1] and "Traceback" not in bad[1]
        # Their team lead sees the team's customers.
        await sign_in(s, "wangqiang")
        status, body = await data(s, f"/sidebar/data/customer/{demo.wangfang}")
        assert status == 200 and body["who"]["managers"] == ["张伟"]
        assert (await data(s, f"/sidebar/data/customer/{demo.sunli}"))[0] == 200
        # Someone else's team lead does not.
        await sign_in(s, "xuming")
        assert (await refusal(s, f"/sidebar/data/customer/{demo.wangfang}"))[0] == 403


async def test_a_send_is_recorded_as_contact_on_the_timeline_and_in_the_audit(db_url: str, tmp_path: Path) -> None:
    async with sidebar_stack(db_url, tmp_path) as s:
        demo = await seed(s)
        await sign_in(s, "zhangwei")
        _, body = await data(s, f"/sidebar/data/customer/{demo.wangfang}")
        weekly = next(o for o in body["offers"] if o["material"] == "s-weekly")
        path = f"/sidebar/customer/{demo.wangfang}/sent"
        sent = {"material": "s-weekly", "link": weekly["link"]}
        # Without the session's CSRF token nothing is recorded.
        assert (await s.client.post(path, json=sent)).status == 403
        token = await csrf_of(s)
        headers = {"X-CSRF-Token": token}
        refused = [
            ({"material": "s-expired", "link": ""}, "expired on 2026-10-31"),
            ({"material": "s-unapproved", "link": ""}, "not approved"),
            ({"material": "s-group-hello", "link": ""}, "may not be sent in this chat"),
            ({"material": "s-weekly", "link": s.links.make_link("s-weekly", "zhangwei", customer=demo.sunli)},
             "not a tracked link minted here"),
            ({"material": "s-weekly", "link": "https://wealth.example.com/weekly"}, "not a tracked link"),
            ({"material": "s-hours", "link": weekly["link"]}, "carries no link"),
        ]
        for wrong, reason in refused:
            resp = await s.client.post(path, json=wrong, headers=headers)
            assert resp.status == 400 and reason in (await resp.json())["error"], wrong
        junk = await s.client.post(path, data=b"not json", headers={**headers, "Content-Type": "application/json"})
        assert junk.status == 400 and "body must be JSON" in (await junk.json())["error"]
        assert await last_contact(s, "zhangwei", demo.wangfang) is None

        s.clock.advance(minutes=5)
        at = s.clock.now()
        resp = await s.client.post(path, json=sent, headers=headers)
        assert resp.status == 200 and (await resp.json())["recorded"] is True
        assert await last_contact(s, "zhangwei", demo.wangfang) == at
        entries = [e for e in await timeline(s, demo.wangfang) if e.kind == "sidebar.send"]
        assert [(e.at, e.detail["material"], e.detail["manager"], e.detail["link"]) for e in entries] == [
            (at, "s-weekly", "zhangwei", weekly["link"])]
        claims = s.links.claims_of(weekly["link"])
        assert claims is not None
        async with s.runtime.sessions() as db:
            sends = (await db.scalars(select(RadarSend).where(RadarSend.token_id == claims.token_id))).all()
            audit = (await db.scalars(select(ConsoleAudit).where(ConsoleAudit.action == "sidebar_send"))).all()
            trail = (await db.scalars(select(TrailRecord))).all()
        assert [(r.material_id, r.sender, r.external_userid) for r in sends] == [
            ("s-weekly", "zhangwei", demo.wangfang)]
        # In the message trail once (the refused attempts left nothing there).
        assert [(t.at, t.kind, t.sender, t.audience, t.audience_type, t.material) for t in trail] == [
            (at, "sidebar", "zhangwei", [demo.wangfang], "customer", "s-weekly")]
        assert [(a.actor, a.target, a.detail) for a in audit] == [
            ("zhangwei", f"customer:{demo.wangfang}", {"material": "s-weekly"})]

        # The customer opens the link: both show in the panel's history, newest first.
        s.clock.advance(minutes=10)
        status, _ = await s.open(weekly["link"])
        assert status == 302
        await s.run()
        _, body = await data(s, f"/sidebar/data/customer/{demo.wangfang}")
        lines = [h["line"] for h in body["history"]]
        assert lines[:2] == ["打开了链接：本周理财精选", "张伟在聊天中发送：本周理财精选"]
        # Another manager cannot record a send to this customer.
        await sign_in(s, "lina")
        resp = await s.client.post(path, json=sent, headers={"X-CSRF-Token": await csrf_of(s)})
        assert resp.status == 403


async def test_task_done_in_the_sidebar_is_the_cards_done(db_url: str, tmp_path: Path) -> None:
    async with sidebar_stack(db_url, tmp_path) as s:
        demo = await seed(s)
        card = await transfer_card(s)
        await sign_in(s, "zhangwei")
        _, body = await data(s, f"/sidebar/data/customer/{demo.wangfang}")
        (task,) = body["tasks"]
        assert (task["task_id"], task["title"], task["status"]) == (card.task_id, "大额转出", "open")
        assert [b["key"] for b in task["buttons"]] == ["done", "snooze", "not_relevant"]
        # The task's suggested script comes first among the words to say.
        script = body["offers"][0]
        assert (script["material"], script["task"]) == ("script-large-transfer-care", card.task_id)
        assert script["messages"][0]["text"]["content"].startswith("王芳您好，看到您近期有一笔较大的资金安排")

        token = await csrf_of(s)
        # Not lina's task (nor her customer): as if it did not exist.
        await sign_in(s, "lina")
        lina = await s.client.post(f"/sidebar/task/{card.task_id}/done", headers={"X-CSRF-Token": await csrf_of(s)})
        assert lina.status == 404
        await sign_in(s, "zhangwei")
        token = await csrf_of(s)
        bad = await s.client.post(f"/sidebar/task/{card.task_id}/later", headers={"X-CSRF-Token": token})
        assert bad.status == 400

        s.clock.advance(minutes=30)
        done_at = s.clock.now()
        resp = await s.client.post(f"/sidebar/task/{card.task_id}/done", headers={"X-CSRF-Token": token})
        assert resp.status == 200 and await resp.json() == {"task_id": card.task_id, "status": "done",
                                                            "status_label": "已完成"}
        await s.send()
        # As the card's own Done button: the card in WeCom shows it, the task is settled, contact moves.
        assert card.updates == [{"button": {"replace_name": "已完成"}}]
        async with s.runtime.sessions() as db:
            row = await db.get(SopTask, card.task_id)
        assert row is not None and (row.status, row.handled_at) == ("done", done_at)
        assert await last_contact(s, "zhangwei", demo.wangfang) == done_at
        again = await s.client.post(f"/sidebar/task/{card.task_id}/done", headers={"X-CSRF-Token": token})
        assert again.status == 409
        _, body = await data(s, f"/sidebar/data/customer/{demo.wangfang}")
        assert body["tasks"] == [] and body["offers"][0]["material"] != "script-large-transfer-care"
        # Settled, it no longer escalates to the team lead.
        await s.run_until(s.clock.now() + timedelta(days=2))
        assert s.texts_to("wangqiang") == []


async def test_the_group_panels_and_a_group_send(db_url: str, tmp_path: Path) -> None:
    async with sidebar_stack(db_url, tmp_path) as s:
        demo = await seed(s)
        await sign_in(s, "zhangwei")
        status, body = await data(s, f"/sidebar/data/group/{demo.payroll_group}")
        assert status == 200
        assert (body["name"], body["group_type"], body["members"]) == ("代发工资群", "代发企业福利群", 2)
        assert body["changes"] == [{"at": "11-01 12:30", "name": "孙丽", "joined": False},
                                   {"at": "10-30 10:00", "name": "王芳", "joined": True}]
        offered = {o["material"]: o for o in body["offers"]}
        assert offered["s-group-hello"]["messages"] == [
            {"msgtype": "text", "text": {"content": "欢迎来到代发工资群，我是张伟。"}}]
        assert "s-weekly" in offered and "s-hours" not in offered and not NEVER_OFFERED & offered.keys()
        claims = s.links.claims_of(offered["s-weekly"]["link"])
        assert claims is not None and (claims.sender, claims.customer) == ("zhangwei", None)

        resp = await s.client.post(f"/sidebar/group/{demo.payroll_group}/sent",
                                   json={"material": "s-group-hello", "link": ""},
                                   headers={"X-CSRF-Token": await csrf_of(s)})
        assert resp.status == 200
        assert [e.detail["material"] for e in await timeline(s, demo.payroll_group) if e.kind == "sidebar.send"] == [
            "s-group-hello"]
        # Neither the owner nor staff in it: refused.
        await sign_in(s, "lina")
        assert (await refusal(s, f"/sidebar/data/group/{demo.payroll_group}"))[0] == 403
        assert (await refusal(s, "/sidebar/data/group/wrUnknownChat"))[0] == 403
