"""OAuth (radar), moments and customer succession."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from scrm.sandbox import SANDBOX_CORP_ID
from tests.sandbox.conftest import Sandbox


async def authorize(sandbox: Sandbox, **params: str) -> tuple[int, str]:
    query = {"appid": SANDBOX_CORP_ID, "response_type": "code", "scope": "snsapi_base", **params}
    async with sandbox.api.session.get(
        f"{sandbox.base}/connect/oauth2/authorize", params=query, allow_redirects=False
    ) as resp:
        return resp.status, resp.headers.get("Location", "")


async def test_oauth_redirect_and_getuserinfo(sandbox: Sandbox) -> None:
    ext = sandbox.ids.customers["王芳"]
    status, location = await authorize(
        sandbox, redirect_uri="https://scrm.example/r/abc?x=1", state="radar42", sandbox_viewer=ext
    )
    assert status == 302
    parts = urlsplit(location)
    assert parts.netloc == "scrm.example" and parts.path == "/r/abc"
    query = parse_qs(parts.query)
    assert query["x"] == ["1"] and query["state"] == ["radar42"]
    code = query["code"][0]
    info = await sandbox.api.get("auth/getuserinfo", code=code)
    assert info["errcode"] == 0 and info["external_userid"] == ext and info["openid"]
    assert (await sandbox.api.get("auth/getuserinfo", code=code))["errcode"] == 40029  # single use
    member = await sandbox.api.get("auth/getuserinfo", code=sandbox.server.issue_oauth_code("zhangwei"))
    assert member["userid"] == "zhangwei" and "openid" not in member
    stranger = await sandbox.api.get("auth/getuserinfo", code=sandbox.server.issue_oauth_code())
    assert stranger["openid"] and "external_userid" not in stranger
    late = sandbox.server.issue_oauth_code("lina")
    sandbox.clock.advance(301)
    assert (await sandbox.api.get("auth/getuserinfo", code=late))["errcode"] == 40029


async def test_oauth_rejects_bad_requests(sandbox: Sandbox) -> None:
    assert (await authorize(sandbox, redirect_uri="https://a.example/", state="bad state!"))[0] == 400
    assert (await authorize(sandbox, redirect_uri="notaurl"))[0] == 400
    assert (await authorize(sandbox, redirect_uri="https://a.example/", appid="wxother"))[0] == 400


async def test_moment_task(sandbox: Sandbox) -> None:
    body = {
        "text": {"content": "周末理财沙龙报名中"},
        "visible_range": {"sender_list": {"user_list": ["zhangwei", "ghost"]}},
    }
    created = await sandbox.api.post("externalcontact/add_moment_task", body)
    assert created["errcode"] == 0
    result = await sandbox.api.get("externalcontact/get_moment_task_result", jobid=created["jobid"])
    assert result["status"] == 3 and result["result"]["invalid_sender_list"]["user_list"] == ["ghost"]
    two_kinds = {
        **body,
        "attachments": [{"msgtype": "image", "image": {"media_id": "m"}}, {"msgtype": "link", "link": {"url": "u"}}],
    }
    assert (await sandbox.api.post("externalcontact/add_moment_task", two_kinds))["errcode"] == 40058
    codes = [(await sandbox.api.post("externalcontact/add_moment_task", body))["errcode"] for _ in range(9)]
    assert codes == [0] * 8 + [45009]  # 10 calls per minute per corp (two were made above)


async def test_transfer_and_unassigned(sandbox: Sandbox) -> None:
    api, ids = sandbox.api, sandbox.ids
    wang, liu = ids.customers["王芳"], ids.customers["孙丽"]
    started = await api.post(
        "externalcontact/transfer_customer",
        {"handover_userid": "zhangwei", "takeover_userid": "lina", "external_userid": [wang, liu, "wmnope"]},
    )
    assert [c["errcode"] for c in started["customer"]] == [0, 84061, 40096]
    pair = {"handover_userid": "zhangwei", "takeover_userid": "lina"}
    waiting = await api.post("externalcontact/transfer_result", pair)
    assert waiting["customer"] == [{"external_userid": wang, "status": 2}]
    sandbox.clock.advance(hours=24)
    done = await api.post("externalcontact/transfer_result", pair)
    assert done["customer"][0]["status"] == 1 and done["customer"][0]["takeover_time"]
    assert sandbox.state.follow("lina", wang) is not None and sandbox.state.follow("zhangwei", wang) is None
    sandbox.state.resign_member("chenjing", sandbox.server.now())
    unassigned = await api.post("externalcontact/get_unassigned_list", {"page_size": 100})
    assert [(i["handover_userid"], i["external_userid"]) for i in unassigned["info"]] == [
        ("chenjing", ids.customers["吴刚"])
    ]
    assert unassigned["is_last"] is True
    resigned = await api.post(
        "externalcontact/resigned/transfer_customer",
        {"handover_userid": "chenjing", "takeover_userid": "wangqiang", "external_userid": [ids.customers["吴刚"]]},
    )
    assert resigned["customer"][0]["errcode"] == 0
    assert (await api.post("externalcontact/get_unassigned_list", {}))["info"] == []
