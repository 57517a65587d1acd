"""企业群发: tasks wait for confirmation; results, receive cap, reminders, cancel."""

from __future__ import annotations

from tests.sandbox.conftest import Driven, Sandbox


async def test_template_sends_nothing_until_confirmed(sandbox: Sandbox) -> None:
    api, ids = sandbox.api, sandbox.ids
    targets = [ids.customers["王芳"], ids.customers["孙丽"], "wmnope"]
    created = await api.post(
        "externalcontact/add_msg_template", {"external_userid": targets, "text": {"content": "本月理财产品上新"}}
    )
    assert created["errcode"] == 0 and created["fail_list"] == ["wmnope"]
    msgid = created["msgid"]
    assert sandbox.state.delivered_messages(kind="mass") == []
    tasks = await api.post("externalcontact/get_groupmsg_task", {"msgid": msgid})
    assert sorted((t["userid"], t["status"]) for t in tasks["task_list"]) == [("lina", 0), ("zhangwei", 0)]
    sandbox.clock.advance(60)
    results = sandbox.server.confirm_msg_task(msgid, "zhangwei")
    assert [(r.target, r.status) for r in results] == [(ids.customers["王芳"], 1)]
    assert sandbox.server.confirm_msg_task(msgid, "zhangwei") == []  # confirming twice sends nothing
    sent = await api.post("externalcontact/get_groupmsg_send_result", {"msgid": msgid, "userid": "zhangwei"})
    assert sent["send_list"] == [
        {
            "external_userid": ids.customers["王芳"],
            "userid": "zhangwei",
            "status": 1,
            "send_time": int(sandbox.server.now()),
        }
    ]
    pending = await api.post("externalcontact/get_groupmsg_send_result", {"msgid": msgid, "userid": "lina"})
    assert [r["status"] for r in pending["send_list"]] == [0]
    tasks = await api.post("externalcontact/get_groupmsg_task", {"msgid": msgid})
    assert {t["userid"]: t["status"] for t in tasks["task_list"]} == {"zhangwei": 2, "lina": 0}
    assert [d.to for d in sandbox.state.delivered_messages(kind="mass")] == [ids.customers["王芳"]]
    listed = await api.post(
        "externalcontact/get_groupmsg_list_v2",
        {"chat_type": "single", "start_time": int(sandbox.server.now()) - 3600, "end_time": int(sandbox.server.now())},
    )
    assert [m["msgid"] for m in listed["group_msg_list"]] == [msgid]
    assert listed["group_msg_list"][0]["create_type"] == 0 and "creator" not in listed["group_msg_list"][0]


async def test_non_friend_at_confirmation_gets_status_2(driven: Driven) -> None:
    sandbox = driven.sandbox
    ext = sandbox.ids.customers["黄磊"]
    created = await sandbox.api.post(
        "externalcontact/add_msg_template", {"sender": "zhangwei", "external_userid": [ext], "text": {"content": "hi"}}
    )
    await driven.driver.del_follow_user("zhangwei", ext)
    results = driven.driver.confirm_msg_task(created["msgid"], "zhangwei")
    assert [(r.target, r.status) for r in results] == [(ext, 2)]
    assert sandbox.state.delivered_messages(kind="mass") == []


async def test_tag_filter_and_sender_scope(sandbox: Sandbox) -> None:
    ids = sandbox.ids
    created = await sandbox.api.post(
        "externalcontact/add_msg_template",
        {
            "sender": "zhangwei",
            "tag_filter": {"group_list": [{"tag_list": [ids.tags["产品持有/代发"], ids.tags["产品持有/按揭"]]}]},
            "text": {"content": "代发客户专享"},
        },
    )
    template = sandbox.state.msg_templates[created["msgid"]]
    assert sorted(r.target for r in template.results) == sorted(ids.customers[n] for n in ("王芳", "刘洋", "黄磊"))


async def test_monthly_receive_cap(sandbox: Sandbox) -> None:
    # The fake clock starts on 2026-11-02 (China time): November has 30 days.
    ext = sandbox.ids.customers["王芳"]
    body = {"sender": "zhangwei", "external_userid": [ext], "text": {"content": "每日早报"}}
    statuses = []
    for _ in range(31):
        msgid = (await sandbox.api.post("externalcontact/add_msg_template", body))["msgid"]
        statuses += [r.status for r in sandbox.server.confirm_msg_task(msgid, "zhangwei")]
        sandbox.clock.advance(600)
    assert statuses == [1] * 30 + [3]
    assert len(sandbox.state.delivered_messages(kind="mass", to=ext)) == 30
    sandbox.clock.advance(days=30)  # December: a fresh allowance
    msgid = (await sandbox.api.post("externalcontact/add_msg_template", body))["msgid"]
    assert [r.status for r in sandbox.server.confirm_msg_task(msgid, "zhangwei")] == [1]


async def test_group_send_remind_and_cancel(sandbox: Sandbox) -> None:
    api, ids = sandbox.api, sandbox.ids
    assert (await api.post("externalcontact/add_msg_template", {"chat_type": "group", "text": {"content": "x"}}))[
        "errcode"
    ] == 40058  # sender is required for group sends
    created = await api.post(
        "externalcontact/add_msg_template",
        {"chat_type": "group", "sender": "zhangwei", "text": {"content": "今晚8点讲座开始"}},
    )
    msgid = created["msgid"]
    template = sandbox.state.msg_templates[msgid]
    assert sorted(r.target for r in template.results) == sorted([ids.groups["代发工资群"], ids.groups["养生快闪群"]])
    for _ in range(3):
        assert (await api.post("externalcontact/remind_groupmsg_send", {"msgid": msgid}))["errcode"] == 0
    assert (await api.post("externalcontact/remind_groupmsg_send", {"msgid": msgid}))["errcode"] == 40058
    sandbox.clock.advance(hours=24)
    assert (await api.post("externalcontact/remind_groupmsg_send", {"msgid": msgid}))["errcode"] == 0
    assert (await api.post("externalcontact/cancel_groupmsg_send", {"msgid": msgid}))["errcode"] == 0
    assert sandbox.server.confirm_msg_task(msgid, "zhangwei") == []
    result = await api.post("externalcontact/get_groupmsg_send_result", {"msgid": msgid, "userid": "zhangwei"})
    assert result["send_list"] == []  # group results list sent records only
    assert sandbox.state.delivered_messages(kind="mass") == []
