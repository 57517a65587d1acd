"""message/send semantics, template cards and media upload."""

from __future__ import annotations

import aiohttp

from tests.sandbox.conftest import Sandbox

AGENT = 1000002


def text(content: str, **extra: object) -> dict[str, object]:
    return {"touser": "zhangwei", "msgtype": "text", "agentid": AGENT, "text": {"content": content}, **extra}


async def test_send_text_and_recipients(sandbox: Sandbox) -> None:
    reply = await sandbox.api.post("message/send", {**text("早上好"), "touser": "zhangwei|ghost", "toparty": "3|99"})
    assert reply["errcode"] == 0 and reply["msgid"]
    assert reply["invaliduser"] == "ghost" and reply["invalidparty"] == "99"
    # Department 3 of the demo bank is the wealth team: chenjing and her team lead sunhui.
    assert sorted(d.to for d in sandbox.state.delivered_messages(kind="app")) == ["chenjing", "sunhui", "zhangwei"]
    none = await sandbox.api.post("message/send", {**text("x"), "touser": "ghost|nobody"})
    assert none["errcode"] == 81013 and none["invaliduser"] == "ghost|nobody"
    assert (await sandbox.api.post("message/send", {**text("x"), "agentid": 1}))["errcode"] == 40056
    assert (await sandbox.api.post("message/send", {**text("x"), "msgtype": "voice"}))["errcode"] == 40058
    everyone = await sandbox.api.post("message/send", {**text("全员通知"), "touser": "@all"})
    assert everyone["errcode"] == 0
    assert len(sandbox.state.delivered_messages(kind="app")) == 3 + len(sandbox.state.members)


async def test_duplicate_check(sandbox: Sandbox) -> None:
    body = text("客户王芳生日提醒", enable_duplicate_check=1, duplicate_check_interval=600)
    for _ in range(2):
        assert (await sandbox.api.post("message/send", body))["errcode"] == 0
    assert len(sandbox.state.delivered_messages(kind="app")) == 1
    assert [d.dropped for d in sandbox.state.dropped_messages()] == ["duplicate"]
    await sandbox.api.post("message/send", text("客户王芳生日提醒"))  # check off: delivered again
    sandbox.clock.advance(600)
    await sandbox.api.post("message/send", body)  # interval passed
    assert len(sandbox.state.delivered_messages(kind="app")) == 3
    too_long = await sandbox.api.post("message/send", {**body, "duplicate_check_interval": 4 * 3600 + 1})
    assert too_long["errcode"] == 40058


async def test_per_member_minute_and_hour_limits(sandbox: Sandbox) -> None:
    for i in range(31):
        assert (await sandbox.api.post("message/send", text(f"m{i}")))["errcode"] == 0  # drops are silent
    assert len(sandbox.state.delivered_messages(kind="app", to="zhangwei")) == 30
    assert [d.content["text"]["content"] for d in sandbox.state.dropped_messages(reason="member_per_minute")] == ["m30"]
    sent = 30
    for minute in range(1, 40):  # 30 a minute until the hourly 1000 is reached
        sandbox.clock.advance(60)
        for i in range(30):
            await sandbox.api.post("message/send", text(f"h{minute}-{i}"))
            sent += 1
            if sent >= 1010:
                break
        if sent >= 1010:
            break
    assert len(sandbox.state.delivered_messages(kind="app", to="zhangwei")) == 1000
    assert len(sandbox.state.dropped_messages(reason="member_per_hour")) == 10


async def test_text_truncated_at_2048_bytes(sandbox: Sandbox) -> None:
    await sandbox.api.post("message/send", text("字" * 1000))  # 3000 bytes
    [delivered] = sandbox.state.delivered_messages(kind="app")
    assert len(delivered.content["text"]["content"].encode()) <= 2048


async def test_template_card_response_code_single_use_and_72h(sandbox: Sandbox) -> None:
    card = {
        "card_type": "button_interaction",
        "main_title": {"title": "请确认"},
        "task_id": "t1",
        "button_list": [{"text": "确认", "key": "ok"}],
    }
    body = {"touser": "zhangwei|lina", "msgtype": "template_card", "agentid": AGENT, "template_card": card}
    sent = await sandbox.api.post("message/send", body)
    assert sent["response_code"]
    assert (await sandbox.api.post("message/send", body))["errcode"] == 40058  # task_id reused
    notice = {"card_type": "text_notice", "main_title": {"title": "通知"}}
    plain = await sandbox.api.post("message/send", {**body, "template_card": notice})
    assert plain["errcode"] == 0 and "response_code" not in plain
    update = {
        "atall": 1,
        "agentid": AGENT,
        "response_code": sent["response_code"],
        "button": {"replace_name": "已确认"},
    }
    sandbox.clock.advance(hours=72)
    assert (await sandbox.api.post("message/update_template_card", update))["errcode"] == 40058  # expired
    fresh = await sandbox.api.post("message/send", {**body, "template_card": {**card, "task_id": "t2"}})
    update["response_code"] = fresh["response_code"]
    assert (await sandbox.api.post("message/update_template_card", update))["errcode"] == 0
    assert sorted(d.to for d in sandbox.state.delivered_messages(kind="card_update")) == ["lina", "zhangwei"]
    assert (await sandbox.api.post("message/update_template_card", update))["errcode"] == 40058


async def test_media_upload(sandbox: Sandbox) -> None:
    async def upload(kind: str, data: bytes) -> dict[str, object]:
        form = aiohttp.FormData()
        form.add_field("media", data, filename="a.png", content_type="image/png")
        async with sandbox.api.session.post(
            f"{sandbox.base}/cgi-bin/media/upload", params={"access_token": sandbox.api.token, "type": kind}, data=form
        ) as resp:
            result: dict[str, object] = await resp.json()
            return result

    ok = await upload("image", b"\x89PNG-sandbox")
    assert ok["errcode"] == 0 and ok["type"] == "image" and ok["created_at"] == str(int(sandbox.server.now()))
    assert (await upload("image", b"12345"))["errcode"] == 40006
    assert (await upload("gif", b"123456"))["errcode"] == 40004
    code = (
        await sandbox.api.post(
            "externalcontact/add_msg_template",
            {
                "sender": "zhangwei",
                "external_userid": [sandbox.ids.customers["王芳"]],
                "attachments": [{"msgtype": "image", "image": {"media_id": ok["media_id"]}}],
            },
        )
    )["errcode"]
    assert code == 0
    sandbox.clock.advance(days=3)
    expired = await sandbox.api.post(
        "externalcontact/add_msg_template",
        {
            "sender": "zhangwei",
            "external_userid": [sandbox.ids.customers["王芳"]],
            "attachments": [{"msgtype": "image", "image": {"media_id": ok["media_id"]}}],
        },
    )
    assert expired["errcode"] == 40007
