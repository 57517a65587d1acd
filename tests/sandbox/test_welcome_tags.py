"""Welcome codes (20 s, single use) and corp tag rules."""

from __future__ import annotations

import pytest

from scrm.sandbox.records import Limits
from tests.sandbox.conftest import Driven, Sandbox


async def test_welcome_code_once_within_20s(driven: Driven) -> None:
    sandbox = driven.sandbox
    outcome = await driven.driver.add_external_contact("zhangwei", name="钱多多")
    code, ext = outcome.fields["WelcomeCode"], outcome.fields["ExternalUserID"]
    body = {"welcome_code": code, "text": {"content": "您好，我是您的客户经理张伟"}}
    sandbox.clock.advance(19)
    assert (await sandbox.api.post("externalcontact/send_welcome_msg", body))["errcode"] == 0
    again = await sandbox.api.post("externalcontact/send_welcome_msg", body)
    assert again["errcode"] == 41051
    delivered = sandbox.state.delivered_messages(kind="welcome")
    assert [(d.sender, d.to) for d in delivered] == [("zhangwei", ext)]


async def test_welcome_code_expired_or_unknown(driven: Driven) -> None:
    sandbox = driven.sandbox
    outcome = await driven.driver.add_external_contact("lina")
    sandbox.clock.advance(20)
    body = {"welcome_code": outcome.fields["WelcomeCode"], "text": {"content": "hi"}}
    assert (await sandbox.api.post("externalcontact/send_welcome_msg", body))["errcode"] == 40058
    unknown = await sandbox.api.post("externalcontact/send_welcome_msg", {**body, "welcome_code": "WCnope"})
    assert unknown["errcode"] == 40058
    assert sandbox.state.delivered_messages(kind="welcome") == []


async def test_welcome_bad_content_does_not_burn_code(driven: Driven) -> None:
    sandbox = driven.sandbox
    code = (await driven.driver.add_external_contact("lina")).fields["WelcomeCode"]
    too_long = {"welcome_code": code, "text": {"content": "字" * 1400}}  # 4200 bytes > 4000
    assert (await sandbox.api.post("externalcontact/send_welcome_msg", too_long))["errcode"] == 40058
    bad_media = {"welcome_code": code, "attachments": [{"msgtype": "image", "image": {"media_id": "nope"}}]}
    assert (await sandbox.api.post("externalcontact/send_welcome_msg", bad_media))["errcode"] == 40007
    ok = {"welcome_code": code, "text": {"content": "欢迎"}}
    assert (await sandbox.api.post("externalcontact/send_welcome_msg", ok))["errcode"] == 0


async def test_add_corp_tag_rules(sandbox: Sandbox) -> None:
    api = sandbox.api
    created = await api.post(
        "externalcontact/add_corp_tag",
        {"group_name": "生命周期", "tag": [{"name": "新客"}, {"name": "新客"}, {"name": "活跃"}]},
    )
    assert created["errcode"] == 0
    group = created["tag_group"]
    assert [t["name"] for t in group["tag"]] == ["新客", "活跃"]  # same-name tags collapse
    more = await api.post("externalcontact/add_corp_tag", {"group_name": "生命周期", "tag": [{"name": "沉睡"}]})
    assert more["tag_group"]["group_id"] == group["group_id"]  # existing group name adds into it
    clash = await api.post("externalcontact/add_corp_tag", {"group_id": group["group_id"], "tag": [{"name": "活跃"}]})
    assert clash["errcode"] == 40071
    empty = await api.post("externalcontact/add_corp_tag", {"group_name": "空组", "tag": []})
    assert empty["errcode"] == 40058
    long_name = await api.post("externalcontact/add_corp_tag", {"group_name": "g", "tag": [{"name": "长" * 31}]})
    assert long_name["errcode"] == 40058
    bad_group = await api.post("externalcontact/add_corp_tag", {"group_id": "etnope", "tag": [{"name": "a"}]})
    assert bad_group["errcode"] == 40068


@pytest.mark.parametrize("limits", [Limits(max_corp_tags=15)])
async def test_corp_tag_cap(sandbox: Sandbox) -> None:
    # The demo has 13 tags; the cap is 15 here (3000 in WeCom).
    over = await sandbox.api.post(
        "externalcontact/add_corp_tag", {"group_name": "x", "tag": [{"name": "a"}, {"name": "b"}, {"name": "c"}]}
    )
    assert over["errcode"] == 40058 and "limit" in over["errmsg"]
    fits = await sandbox.api.post(
        "externalcontact/add_corp_tag", {"group_name": "x", "tag": [{"name": "a"}, {"name": "b"}]}
    )
    assert fits["errcode"] == 0


async def test_edit_and_delete_corp_tags(sandbox: Sandbox) -> None:
    api, ids = sandbox.api, sandbox.ids
    v0 = ids.tags["客户等级/V0"]
    assert (await api.post("externalcontact/edit_corp_tag", {"id": v0, "name": "V1"}))["errcode"] == 40071
    assert (await api.post("externalcontact/edit_corp_tag", {"id": v0, "name": "普通"}))["errcode"] == 0
    rename_group = {"id": ids.tag_groups["兴趣"], "name": "客户等级"}
    assert (await api.post("externalcontact/edit_corp_tag", rename_group))["errcode"] == 40071
    assert (await api.post("externalcontact/del_corp_tag", {}))["errcode"] == 40058
    interest = [ids.tags[f"兴趣/{n}"] for n in ("理财", "健康", "旅游")]
    assert (await api.post("externalcontact/del_corp_tag", {"tag_id": interest}))["errcode"] == 0
    listed = await api.post("externalcontact/get_corp_tag_list", {})
    assert "兴趣" not in [g["group_name"] for g in listed["tag_group"]]  # emptied group auto-deleted
    relation = sandbox.state.follow("lina", ids.customers["郑秀英"])
    assert relation is not None and not set(interest) & set(relation.tag_ids)  # stripped from customers
    assert (await api.post("externalcontact/del_corp_tag", {"tag_id": interest[:1]}))["errcode"] == 40068
    only = await api.post("externalcontact/get_corp_tag_list", {"tag_id": [ids.tags["产品持有/代发"]]})
    assert [[t["name"] for t in g["tag"]] for g in only["tag_group"]] == [["代发"]]


async def test_mark_tag(sandbox: Sandbox) -> None:
    api, ids = sandbox.api, sandbox.ids
    ext = ids.customers["周杰"]
    vip = ids.tags["客户等级/VIP"]
    base = {"userid": "lina", "external_userid": ext}
    assert (await api.post("externalcontact/mark_tag", base))["errcode"] == 40058
    assert (await api.post("externalcontact/mark_tag", {**base, "add_tag": ["etnope"]}))["errcode"] == 40068
    not_follow = await api.post("externalcontact/mark_tag", {**base, "userid": "zhangwei", "add_tag": [vip]})
    assert not_follow["errcode"] == 84061
    unknown = await api.post("externalcontact/mark_tag", {**base, "external_userid": "wmnope", "add_tag": [vip]})
    assert unknown["errcode"] == 40096
    ok = await api.post("externalcontact/mark_tag", {**base, "add_tag": [vip], "remove_tag": [ids.tags["客户等级/V0"]]})
    assert ok["errcode"] == 0
    got = await api.get("externalcontact/get", external_userid=ext)
    assert {t["tag_name"] for t in got["follow_user"][0]["tags"]} == {"VIP", "信用卡"}
