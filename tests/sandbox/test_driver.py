"""The callback driver: state first, then encrypted delivery with WeCom-style retries."""

from __future__ import annotations

from tests.sandbox.conftest import Driven


async def test_add_contact_delivers_encrypted_event_with_welcome_code(driven: Driven) -> None:
    outcome = await driven.driver.add_external_contact("zhangwei", name="钱多多", state="branch01")
    assert outcome.delivered and outcome.attempts == 1 and outcome.statuses == [200]
    event = driven.target.events[0]
    assert event.findtext("Event") == "change_external_contact"
    assert event.findtext("ChangeType") == "add_external_contact"
    assert event.findtext("FromUserName") == "sys"
    assert event.findtext("UserID") == "zhangwei"
    assert event.findtext("State") == "branch01"
    ext = event.findtext("ExternalUserID") or ""
    code = event.findtext("WelcomeCode") or ""
    assert event.findtext("CreateTime") == str(int(driven.sandbox.server.now()))
    # State changed before delivery: the relation and the code are live in the sandbox.
    relation = driven.sandbox.state.follow("zhangwei", ext)
    assert relation is not None and relation.state == "branch01"
    assert driven.sandbox.state.welcome_codes[code].valid(driven.sandbox.server.now())
    assert outcome.fields["WelcomeCode"] == code


async def test_driver_retries_until_200(driven: Driven) -> None:
    driven.target.fail_first = 2
    outcome = await driven.driver.del_follow_user("zhangwei", driven.sandbox.ids.customers["王芳"])
    assert outcome.delivered and outcome.attempts == 3 and outcome.statuses == [500, 500, 200]
    assert len(driven.target.events) == 1
    assert driven.sandbox.state.follow("zhangwei", driven.sandbox.ids.customers["王芳"]) is None


async def test_driver_retries_on_timeout(driven: Driven) -> None:
    driven.target.hang_first = 1
    outcome = await driven.driver.del_external_contact(
        "zhangwei", driven.sandbox.ids.customers["黄磊"], source="DELETE_BY_TRANSFER"
    )
    assert outcome.delivered and outcome.statuses[0] is None and outcome.statuses[-1] == 200
    assert driven.target.events[-1].findtext("Source") == "DELETE_BY_TRANSFER"


async def test_driver_gives_up_after_three_retries(driven: Driven) -> None:
    driven.target.fail_first = 10
    outcome = await driven.driver.edit_external_contact("lina", driven.sandbox.ids.customers["孙丽"], remark="孙阿姨")
    assert not outcome.delivered and outcome.attempts == 4 and outcome.statuses == [500] * 4
    relation = driven.sandbox.state.follow("lina", driven.sandbox.ids.customers["孙丽"])
    assert relation is not None and relation.remark == "孙阿姨"  # the change happened anyway


async def test_group_join_leave_versions_match_groupchat_get(driven: Driven) -> None:
    sandbox = driven.sandbox
    chat_id = sandbox.ids.groups["银发兴趣群"]
    before = (await sandbox.api.post("externalcontact/groupchat/get", {"chat_id": chat_id}))["group_chat"]
    await driven.driver.join_group(chat_id, ["wmstranger01", "chenjing"], join_scene=3, state="poster")
    event = driven.target.events[-1]
    assert event.findtext("ChangeType") == "update" and event.findtext("UpdateDetail") == "add_member"
    assert event.findtext("JoinScene") == "3" and event.findtext("MemChangeCnt") == "2"
    assert [i.text for i in event.iterfind("MemChangeList/Item")] == ["wmstranger01", "chenjing"]
    assert event.findtext("LastMemVer") == before["member_version"]
    after = (await sandbox.api.post("externalcontact/groupchat/get", {"chat_id": chat_id, "need_name": 1}))[
        "group_chat"
    ]
    assert event.findtext("CurMemVer") == after["member_version"] != before["member_version"]
    stranger = next(m for m in after["member_list"] if m["userid"] == "wmstranger01")
    assert stranger["type"] == 2 and stranger["join_scene"] == 3 and stranger["state"] == "poster"
    await driven.driver.leave_group(chat_id, ["wmstranger01"], quit_scene=1)
    event = driven.target.events[-1]
    assert event.findtext("UpdateDetail") == "del_member" and event.findtext("QuitScene") == "1"
    assert event.findtext("LastMemVer") == after["member_version"]


async def test_group_create_and_dismiss(driven: Driven) -> None:
    outcome = await driven.driver.create_group("lina", "理财沙龙群", members=[driven.sandbox.ids.customers["周杰"]])
    chat_id = outcome.fields["ChatId"]
    assert driven.target.events[-1].findtext("ChangeType") == "create"
    listed = await driven.sandbox.api.post("externalcontact/groupchat/list", {"limit": 100})
    assert chat_id in [c["chat_id"] for c in listed["group_chat_list"]]
    await driven.driver.dismiss_group(chat_id)
    assert driven.target.events[-1].findtext("ChangeType") == "dismiss"
    gone = await driven.sandbox.api.post("externalcontact/groupchat/get", {"chat_id": chat_id})
    assert gone["errcode"] == 40058


async def test_admin_tag_events(driven: Driven) -> None:
    created = await driven.driver.create_tag("风险偏好", "稳健型")
    assert created.fields["TagType"] == "tag_group" and created.fields["ChangeType"] == "create"
    group_id = created.fields["Id"]
    tag = await driven.driver.create_tag("风险偏好", "进取型")
    assert tag.fields["TagType"] == "tag"
    listed = await driven.sandbox.api.post("externalcontact/get_corp_tag_list", {"group_id": [group_id]})
    assert [t["name"] for t in listed["tag_group"][0]["tag"]] == ["稳健型", "进取型"]
    # Admin-made tags cannot be edited by the app.
    denied = await driven.sandbox.api.post("externalcontact/edit_corp_tag", {"id": tag.fields["Id"], "name": "x"})
    assert denied["errcode"] == 60011
    await driven.driver.edit_tag(tag.fields["Id"], "激进型")
    assert driven.target.events[-1].findtext("ChangeType") == "update"
    await driven.driver.delete_tag_group(group_id)
    assert driven.target.events[-1].findtext("TagType") == "tag_group"
    shuffled = await driven.driver.shuffle_tags()
    assert shuffled.fields["ChangeType"] == "shuffle" and "TagType" not in shuffled.fields


async def test_card_button_event_and_response_code(driven: Driven) -> None:
    sandbox = driven.sandbox
    card = {
        "card_type": "button_interaction",
        "main_title": {"title": "客户生日提醒"},
        "task_id": "task-birthday-1",
        "button_list": [{"text": "已联系", "key": "done"}],
    }
    sent = await sandbox.api.post(
        "message/send", {"touser": "zhangwei", "msgtype": "template_card", "agentid": 1000002, "template_card": card}
    )
    assert sent["errcode"] == 0 and sent["response_code"]
    outcome = await driven.driver.press_card_button("zhangwei", "task-birthday-1", "done")
    event = driven.target.events[-1]
    assert event.findtext("Event") == "template_card_event" and event.findtext("FromUserName") == "zhangwei"
    assert event.findtext("CardType") == "button_interaction" and event.findtext("EventKey") == "done"
    assert "<AgentID>" in driven.target.raw[-1]
    code = outcome.fields["ResponseCode"]
    body = {"userids": ["zhangwei"], "agentid": 1000002, "response_code": code, "button": {"replace_name": "已处理"}}
    assert (await sandbox.api.post("message/update_template_card", body))["errcode"] == 0
    assert (await sandbox.api.post("message/update_template_card", body))["errcode"] == 40058  # single use
    assert sandbox.state.cards["task-birthday-1"].updates == [{"button": {"replace_name": "已处理"}}]


async def test_cdata_escaping_survives(driven: Driven) -> None:
    await driven.driver.send_text("zhangwei", "a]]>b<c>")
    assert driven.target.events[-1].findtext("Content") == "a]]>b<c>"
