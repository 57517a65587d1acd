"""Customer groups, 「加入群聊」 and 「联系我」 ways, group welcome templates."""

from __future__ import annotations

from tests.sandbox.conftest import Sandbox


async def test_groupchat_list_and_get(sandbox: Sandbox) -> None:
    api, ids = sandbox.api, sandbox.ids
    first = await api.post("externalcontact/groupchat/list", {"limit": 2})
    assert len(first["group_chat_list"]) == 2 and first["next_cursor"]
    rest = await api.post("externalcontact/groupchat/list", {"limit": 2, "cursor": first["next_cursor"]})
    assert len(rest["group_chat_list"]) == 1 and rest["next_cursor"] == ""
    mine = await api.post("externalcontact/groupchat/list", {"limit": 10, "owner_filter": {"userid_list": ["lina"]}})
    assert [c["chat_id"] for c in mine["group_chat_list"]] == [ids.groups["银发兴趣群"]]
    assert (await api.post("externalcontact/groupchat/list", {}))["errcode"] == 40058  # limit is required
    chat = (await api.post("externalcontact/groupchat/get", {"chat_id": ids.groups["代发工资群"], "need_name": 1}))[
        "group_chat"
    ]
    assert chat["owner"] == "zhangwei" and chat["name"] == "代发工资群" and len(chat["member_version"]) == 32
    assert {m["name"] for m in chat["member_list"]} == {"张伟", "王芳", "黄磊"}


async def test_join_way_rules(sandbox: Sandbox) -> None:
    api, ids = sandbox.api, sandbox.ids
    chats = list(ids.groups.values())
    six = {"scene": 2, "chat_id_list": chats * 2, "state": "poster1"}
    assert (await api.post("externalcontact/groupchat/add_join_way", six))["errcode"] == 40058
    missing = {"scene": 2, "chat_id_list": ["wrnope"]}
    assert (await api.post("externalcontact/groupchat/add_join_way", missing))["errcode"] == 40058
    long_state = {"scene": 2, "chat_id_list": chats, "state": "s" * 31}
    assert (await api.post("externalcontact/groupchat/add_join_way", long_state))["errcode"] == 40058
    created = await api.post(
        "externalcontact/groupchat/add_join_way", {"scene": 2, "chat_id_list": chats, "state": "p1"}
    )
    config_id = created["config_id"]
    way = (await api.post("externalcontact/groupchat/get_join_way", {"config_id": config_id}))["join_way"]
    assert way["chat_id_list"] == chats and way["state"] == "p1" and way["qr_code"]
    update = {"config_id": config_id, "scene": 2, "chat_id_list": chats[:1]}
    assert (await api.post("externalcontact/groupchat/update_join_way", update))["errcode"] == 0
    way = (await api.post("externalcontact/groupchat/get_join_way", {"config_id": config_id}))["join_way"]
    assert way["chat_id_list"] == chats[:1] and way["state"] == ""  # full overwrite
    assert (await api.post("externalcontact/groupchat/del_join_way", {"config_id": config_id}))["errcode"] == 0
    assert (await api.post("externalcontact/groupchat/get_join_way", {"config_id": config_id}))["errcode"] == 40058


async def test_contact_way_rules(sandbox: Sandbox) -> None:
    api = sandbox.api
    two_users = {"type": 1, "scene": 2, "user": ["zhangwei", "lina"]}
    assert (await api.post("externalcontact/add_contact_way", two_users))["errcode"] == 40058
    long_state = {"type": 1, "scene": 2, "user": ["zhangwei"], "state": "x" * 31}
    assert (await api.post("externalcontact/add_contact_way", long_state))["errcode"] == 40058
    ghost = {"type": 1, "scene": 2, "user": ["ghost"]}
    assert (await api.post("externalcontact/add_contact_way", ghost))["errcode"] == 60111
    ok = await api.post(
        "externalcontact/add_contact_way", {"type": 1, "scene": 2, "user": ["zhangwei"], "state": "wx01"}
    )
    assert ok["errcode"] == 0 and ok["qr_code"]
    team = await api.post("externalcontact/add_contact_way", {"type": 2, "scene": 1, "user": ["zhangwei", "lina"]})
    assert team["errcode"] == 0 and "qr_code" not in team
    got = (await api.post("externalcontact/get_contact_way", {"config_id": ok["config_id"]}))["contact_way"]
    assert got["state"] == "wx01" and got["user"] == ["zhangwei"] and got["skip_verify"] is True
    upd = {"config_id": ok["config_id"], "state": "wx02", "remark": "网点海报"}
    assert (await api.post("externalcontact/update_contact_way", upd))["errcode"] == 0
    listed = await api.post("externalcontact/list_contact_way", {"limit": 1})
    assert len(listed["contact_way"]) == 1 and listed["next_cursor"]
    assert (await api.post("externalcontact/del_contact_way", {"config_id": ok["config_id"]}))["errcode"] == 0
    listed = await api.post("externalcontact/list_contact_way", {})
    assert [w["config_id"] for w in listed["contact_way"]] == [team["config_id"]]


async def test_group_welcome_template(sandbox: Sandbox) -> None:
    body = {"text": {"content": "欢迎加入代发工资群"}, "link": {"title": "工资卡权益", "url": "https://bank.example/p"}}
    created = await sandbox.api.post("externalcontact/group_welcome_template/add", body)
    assert created["errcode"] == 0
    got = await sandbox.api.post("externalcontact/group_welcome_template/get", {"template_id": created["template_id"]})
    assert got["text"]["content"] == "欢迎加入代发工资群"
    assert (await sandbox.api.post("externalcontact/group_welcome_template/add", {}))["errcode"] == 40058
