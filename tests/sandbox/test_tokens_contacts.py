"""Token flow and customer APIs over real HTTP."""

from __future__ import annotations

from scrm.sandbox import SANDBOX_CORP_ID
from tests.sandbox.conftest import Sandbox


async def test_token_flow_and_expiry(sandbox: Sandbox) -> None:
    api = sandbox.api
    api.auto_refresh = False
    ok = await api.get("externalcontact/list", userid="zhangwei")
    assert ok["errcode"] == 0 and len(ok["external_userid"]) == 4
    assert (await api.get("externalcontact/list", userid="zhangwei", access_token=""))["errcode"] == 41001
    assert (await api.get("externalcontact/list", userid="zhangwei", access_token="nope"))["errcode"] == 40014
    sandbox.clock.advance(7199)
    assert (await api.get("externalcontact/list", userid="zhangwei"))["errcode"] == 0
    sandbox.clock.advance(1)
    expired = await api.get("externalcontact/list", userid="zhangwei")
    assert expired["errcode"] == 42001 and "42001" in expired["errmsg"]
    fresh = await api.fetch_token()
    assert (await api.get("externalcontact/list", userid="zhangwei"))["errcode"] == 0
    sandbox.server.expire_token(fresh)
    assert (await api.get("externalcontact/list", userid="zhangwei"))["errcode"] == 42001
    await api.fetch_token()
    sandbox.server.expire_all_tokens()
    assert (await api.get("externalcontact/list", userid="zhangwei"))["errcode"] == 42001
    await api.fetch_token()
    sandbox.state.revoke_all_tokens()
    assert (await api.get("externalcontact/list", userid="zhangwei"))["errcode"] == 40014


async def test_gettoken_bad_secret(sandbox: Sandbox) -> None:
    reply = await sandbox.api.get("gettoken", corpid=SANDBOX_CORP_ID, corpsecret="wrong", auth=False)
    assert reply["errcode"] == 40001
    assert "access_token" not in reply
    reply = await sandbox.api.get("gettoken", corpid="other", corpsecret="wrong", auth=False)
    assert reply["errcode"] == 40013


async def test_list_member_without_customers(sandbox: Sandbox) -> None:
    sandbox.state.add_member("newbie", "新人")
    assert (await sandbox.api.get("externalcontact/list", userid="newbie"))["errcode"] == 84061
    assert (await sandbox.api.get("externalcontact/list", userid="ghost"))["errcode"] == 60111


async def test_get_pages_follow_users(sandbox: Sandbox) -> None:
    ext = sandbox.ids.customers["赵敏"]
    sandbox.state.add_follow("lina", ext, sandbox.server.now())  # a third follower; page size is 2
    first = await sandbox.api.get("externalcontact/get", external_userid=ext)
    assert first["errcode"] == 0
    assert first["external_contact"]["name"] == "赵敏"
    assert [f["userid"] for f in first["follow_user"]] == ["zhangwei", "wangqiang"]
    tags = {t["group_name"] + "/" + t["tag_name"] for t in first["follow_user"][0]["tags"]}
    assert tags == {"客户等级/VIP", "产品持有/理财", "兴趣/理财"}
    second = await sandbox.api.get("externalcontact/get", external_userid=ext, cursor=first["next_cursor"])
    assert [f["userid"] for f in second["follow_user"]] == ["lina"]
    assert "next_cursor" not in second
    assert (await sandbox.api.get("externalcontact/get", external_userid="wmnobody"))["errcode"] == 40096


async def test_batch_get_by_user_pages(sandbox: Sandbox) -> None:
    body = {"userid_list": ["zhangwei", "lina"], "limit": 5}
    first = await sandbox.api.post("externalcontact/batch/get_by_user", body)
    assert first["errcode"] == 0 and len(first["external_contact_list"]) == 5
    assert first["external_contact_list"][0]["follow_info"]["tag_id"]
    rest = await sandbox.api.post("externalcontact/batch/get_by_user", {**body, "cursor": first["next_cursor"]})
    assert len(rest["external_contact_list"]) == 2 and rest["next_cursor"] == ""
    too_many = await sandbox.api.post("externalcontact/batch/get_by_user", {"userid_list": ["zhangwei"] * 101})
    assert too_many["errcode"] == 40058


async def test_remark_limits(sandbox: Sandbox) -> None:
    ext = sandbox.ids.customers["王芳"]
    base = {"userid": "zhangwei", "external_userid": ext}
    assert (await sandbox.api.post("externalcontact/remark", {**base, "remark": "王" * 21}))["errcode"] == 40058
    assert (await sandbox.api.post("externalcontact/remark", base))["errcode"] == 40058
    ok = await sandbox.api.post(
        "externalcontact/remark", {**base, "remark": "王芳-VIP", "remark_mobiles": ["13800000000"]}
    )
    assert ok["errcode"] == 0
    relation = sandbox.state.follow("zhangwei", ext)
    assert relation is not None and relation.remark == "王芳-VIP" and relation.remark_mobiles == ["13800000000"]
    await sandbox.api.post("externalcontact/remark", {**base, "remark_mobiles": [""]})
    assert relation.remark_mobiles == [] and relation.remark == "王芳-VIP"
    not_follow = await sandbox.api.post("externalcontact/remark", {**base, "userid": "lina", "remark": "x"})
    assert not_follow["errcode"] == 84061


async def test_invalid_json_body(sandbox: Sandbox) -> None:
    async with sandbox.api.session.post(
        f"{sandbox.base}/cgi-bin/externalcontact/remark",
        params={"access_token": sandbox.api.token},
        data=b"{not json",
    ) as resp:
        assert resp.status == 200
        assert (await resp.json())["errcode"] == 47001
