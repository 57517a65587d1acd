"""Image, file and mini program materials in "What to say", on SQLite and PostgreSQL: offered
only when approved and unexpired, an image's or file's media id handed out from the media cache
(one upload per file, whoever asks), a send recorded only with the material's own media id, and
a mini program's cover served to the WeCom client without a session."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy import select

from handlers.console.models import ConsoleAudit
from handlers.timeline.models import Timeline
from tests.handlers.sidebar.support import MINI_COVER, POSTER, RATES, csrf_of, seed, sidebar_stack, sign_in
from tests.support.stack import Stack

BASE = "http://127.0.0.1:8080"  # the stack's public URL


async def offers(s: Stack, path: str) -> dict[str, dict[str, Any]]:
    resp = await s.client.get(path)
    assert resp.status == 200, await resp.text()
    return {o["material"]: o for o in json.loads(await resp.text())["offers"]}


async def post(s: Stack, path: str, body: Any, token: str) -> tuple[int, dict[str, Any]]:
    resp = await s.client.post(path, json=body, headers={"X-CSRF-Token": token})
    return resp.status, await resp.json()


async def test_images_files_and_mini_programs_are_offered_when_sendable(db_url: str, tmp_path: Path) -> None:
    async with sidebar_stack(db_url, tmp_path) as s:
        demo = await seed(s)
        await sign_in(s, "zhangwei")
        offered = await offers(s, f"/sidebar/data/customer/{demo.wangfang}")
        poster, rates, mini = offered["s-poster"], offered["s-rates"], offered["s-mini"]
        assert (poster["kind"], poster["media"], poster["messages"]) == ("image", True,
                                                                         [{"msgtype": "image", "image": {}}])
        assert (rates["kind"], rates["media"], rates["messages"]) == ("file", True, [{"msgtype": "file", "file": {}}])
        assert (mini["media"], mini["messages"]) == (False, [{"msgtype": "miniprogram", "miniprogram": {
            "appid": "wx5f3a9c7b1d4e6a82", "title": "预约取现", "imgUrl": f"{BASE}/sidebar/cover/s-mini",
            "page": "pages/cash/book.html"}}])
        assert "s-old-poster" not in offered  # expired on 10-31
        # Private-only materials are not offered in a group.
        in_group = await offers(s, f"/sidebar/data/group/{demo.payroll_group}")
        assert not {"s-poster", "s-rates", "s-mini"} & in_group.keys()
        html = await (await s.client.get(f"/sidebar/customer/{demo.wangfang}")).text()
        assert "图片</span>理财节海报" in html and "文件</span>存款利率表" in html


async def test_a_media_id_from_the_cache_and_a_send_recorded_with_it(db_url: str, tmp_path: Path) -> None:
    async with sidebar_stack(db_url, tmp_path) as s:
        demo = await seed(s)
        await sign_in(s, "zhangwei")
        token = await csrf_of(s)
        media = f"/sidebar/customer/{demo.wangfang}/media"
        assert (await s.client.post(media, json={"material": "s-poster"})).status == 403  # no CSRF token
        for wrong, reason in (("s-old-poster", "expired on 2026-10-31"), ("s-hours", "no image or file"),
                              ("nope", "no image or file")):
            status, body = await post(s, media, {"material": wrong}, token)
            assert status == 400 and reason in body["error"], wrong
        assert s.calls("media/upload") == []

        status, first = await post(s, media, {"material": "s-poster"}, token)
        assert status == 200 and (first["material"], first["msgtype"]) == ("s-poster", "image")
        uploaded = s.state.media[first["mediaid"]]
        materials = tmp_path / "materials"
        assert (uploaded.type, uploaded.filename, uploaded.size) == ("image", Path(POSTER).name,
                                                                     (materials / POSTER).stat().st_size)
        # Asked again (another tap): the cached id, no second upload.
        assert (await post(s, media, {"material": "s-poster"}, token))[1]["mediaid"] == first["mediaid"]
        _, file_id = await post(s, media, {"material": "s-rates"}, token)
        assert (s.state.media[file_id["mediaid"]].type, s.state.media[file_id["mediaid"]].filename) == (
            "file", Path(RATES).name)
        assert len(s.calls("media/upload")) == 2

        sent = f"/sidebar/customer/{demo.wangfang}/sent"
        for body, reason in (({"material": "s-poster"}, "not this material's media id"),
                             ({"material": "s-poster", "mediaid": file_id["mediaid"]}, "not this material's"),
                             ({"material": "s-hours", "mediaid": first["mediaid"]}, "carries no mediaid")):
            status, answer = await post(s, sent, body, token)
            assert status == 400 and reason in answer["error"], body
        s.clock.advance(minutes=2)
        status, answer = await post(s, sent, {"material": "s-poster", "link": "", "mediaid": first["mediaid"]}, token)
        assert status == 200 and answer["recorded"] is True
        async with s.runtime.sessions() as db:
            entries = (await db.scalars(select(Timeline).where(Timeline.subject_id == demo.wangfang,
                                                               Timeline.kind == "sidebar.send"))).all()
            audit = (await db.scalars(select(ConsoleAudit).where(ConsoleAudit.action == "sidebar_send"))).all()
        assert [(e.at, e.detail["material"], e.detail["mediaid"]) for e in entries] == [
            (s.clock.now(), "s-poster", first["mediaid"])]
        assert [a.detail for a in audit] == [{"material": "s-poster", "mediaid": first["mediaid"]}]

        # Not her customer: no media id either.
        await sign_in(s, "lina")
        assert (await post(s, media, {"material": "s-poster"}, await csrf_of(s)))[0] == 403


async def test_a_mini_programs_cover_is_served_to_the_wecom_client(db_url: str, tmp_path: Path) -> None:
    async with sidebar_stack(db_url, tmp_path) as s:
        await seed(s)
        s.client.session.cookie_jar.clear()  # WeCom's client fetches imgUrl without the manager's session
        resp = await s.client.get("/sidebar/cover/s-mini")
        assert resp.status == 200 and await resp.read() == (tmp_path / "materials" / MINI_COVER).read_bytes()
        for other in ("s-poster", "s-hours", "nope"):  # no mini program cover: nothing to serve
            assert (await s.client.get(f"/sidebar/cover/{other}")).status == 404


async def test_the_emulated_webview_takes_only_what_wecoms_client_would(db_url: str, tmp_path: Path) -> None:
    async with sidebar_stack(db_url, tmp_path) as s:
        demo = await seed(s)
        await sign_in(s, "zhangwei")
        _, upload = await post(s, f"/sidebar/customer/{demo.wangfang}/media", {"material": "s-poster"},
                               await csrf_of(s))
        view = s.state.jssdk.open("zhangwei", customer=demo.wangfang)
        view.configured = True  # (the agentConfig check itself: tests/sandbox/test_jssdk.py)
        mini = {"appid": "wx5f3a9c7b1d4e6a82", "title": "预约取现", "imgUrl": f"{BASE}/c.png", "page": "p/a.html"}
        refused = [
            ({"msgtype": "image", "image": {"mediaid": "never-uploaded"}}, "unknown or expired"),
            ({"msgtype": "file", "file": {"mediaid": upload["mediaid"]}}, "an upload of type image, not file"),
            ({"msgtype": "miniprogram", "miniprogram": {**mini, "page": "p/a"}}, "must end with .html"),
            ({"msgtype": "miniprogram", "miniprogram": {**mini, "imgUrl": "c.png"}}, "imgUrl must be an http(s)"),
            ({"msgtype": "miniprogram", "miniprogram": {"appid": mini["appid"]}}, "needs title, imgUrl, page"),
        ]
        async with aiohttp.ClientSession() as http:
            for message, reason in refused:
                async with http.post(f"{s.sandbox_base}/sandbox/jssdk/send",
                                     data=json.dumps({"webview": view.id, "message": message})) as resp:
                    reply = await resp.json()
                assert reply["errcode"] != 0 and reason in reply["errmsg"], message
            image = {"msgtype": "image", "image": {"mediaid": upload["mediaid"]}}
            for message in (image, {"msgtype": "miniprogram", "miniprogram": mini}):
                async with http.post(f"{s.sandbox_base}/sandbox/jssdk/send",
                                     data=json.dumps({"webview": view.id, "message": message})) as resp:
                    assert (await resp.json())["errcode"] == 0
        assert [(m.message["msgtype"], m.media_file) for m in s.state.jssdk.sends_to(customer=demo.wangfang)] == [
            ("image", Path(POSTER).name), ("miniprogram", "")]
