"""The typed client against the built-in WeCom sandbox, over real HTTP.

One test per API family, plus the failure modes the sandbox injects (busy, 45009, dropped and
slow replies, expired and revoked tokens). Time is a FakeClock shared by client and sandbox.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from pytest_aiohttp import AiohttpServer

from scrm.adapters.wecom.api import RetryPolicy, WeComClient
from scrm.adapters.wecom.errors import AmbiguousCallError, ErrCode, WeComError
from scrm.adapters.wecom.models import AddCorpTagRequest, Attachment, ContactWay, NewTag, Text
from scrm.adapters.wecom.models_groups import GroupWelcomeTemplate, JoinWay
from scrm.adapters.wecom.models_messages import (
    AppMessage,
    MomentTask,
    MsgTemplate,
    ReplaceButton,
    SenderList,
    UpdateTemplateCard,
    VisibleRange,
)
from scrm.adapters.wecom.token import MemoryTokenStore
from scrm.kernel.clock import FakeClock
from scrm.kernel.config import WeComSettings

pytest.importorskip("scrm.sandbox.server", reason="the WeCom sandbox (scrm/sandbox/server.py) is not there")
from scrm.sandbox import SANDBOX_AGENT_ID, SANDBOX_CORP_ID, SANDBOX_SECRET
from scrm.sandbox.server import SandboxServer
from scrm.sandbox.state import SandboxState


@dataclass
class Sb:
    client: WeComClient
    server: SandboxServer
    state: SandboxState
    clock: FakeClock

    @property
    def now(self) -> float:
        return self.clock.now().timestamp()


async def start(aiohttp_server: AiohttpServer, *, sandbox_per_minute: int = 10000, timeout_s: float = 5.0,
                **settings: Any) -> tuple[Sb, WeComClient]:
    clock = FakeClock()
    state = SandboxState()
    server = SandboxServer(state, clock, per_api_per_minute=sandbox_per_minute)
    http = await aiohttp_server(server.app)
    ws = WeComSettings(corp_id=SANDBOX_CORP_ID, secret=SANDBOX_SECRET, agent_id=SANDBOX_AGENT_ID,
                       api_base=str(http.make_url("")), request_timeout_s=timeout_s, **settings)
    client = WeComClient(ws, token_store=MemoryTokenStore(clock), clock=clock,
                         retry=RetryPolicy(max_attempts=4), rng=random.Random(1))
    return Sb(client, server, state, clock), client


@pytest.fixture
async def sb(aiohttp_server: AiohttpServer) -> AsyncIterator[Sb]:
    env, client = await start(aiohttp_server)
    now = env.now
    env.state.add_member("zhangsan", "张三")
    env.state.add_member("lisi", "李四")
    env.state.add_member("wangwu", "王五")
    for i in range(5):
        customer = env.state.add_customer(f"客户{i}", external_userid=f"wmcust{i}")
        env.state.add_follow("zhangsan", customer.external_userid, now - 100 + i, state="branch-a")
    env.state.add_follow("lisi", "wmcust0", now - 50)
    env.state.add_follow("wangwu", "wmcust0", now - 40)
    async with client:
        yield env


async def test_customers(sb: Sb) -> None:
    sb.state.limits.follow_user_page = 2
    contact = await sb.client.get_external_contact("wmcust0")
    assert contact.external_contact.name == "客户0"
    assert [f.userid for f in contact.follow_user] == ["zhangsan", "lisi", "wangwu"]
    assert contact.follow_user[0].state == "branch-a"

    ids = await sb.client.list_external_contacts("zhangsan")
    assert ids == [f"wmcust{i}" for i in range(5)]

    page = await sb.client.batch_get_by_user(["zhangsan"], limit=2)
    assert len(page.external_contact_list) == 2 and page.next_cursor
    pairs = [(i.follow_info.userid, i.external_contact.external_userid)
             async for i in sb.client.iter_external_contacts_by_user(["zhangsan", "lisi"], limit=2)]
    assert len(pairs) == 6 and ("lisi", "wmcust0") in pairs

    await sb.client.remark("zhangsan", "wmcust1", remark="王女士", remark_mobiles=["13800000000"])
    follow = sb.state.follow("zhangsan", "wmcust1")
    assert follow is not None and follow.remark == "王女士" and follow.remark_mobiles == ["13800000000"]

    with pytest.raises(WeComError) as info:
        await sb.client.get_external_contact("wm-nobody")
    assert info.value.errcode == ErrCode.INVALID_EXTERNAL_USERID


async def test_corp_tags_and_mark_tag(sb: Sb) -> None:
    added = await sb.client.add_corp_tag(AddCorpTagRequest(group_name="资产等级", tag=[NewTag(name="高净值"),
                                                                                   NewTag(name="普通", order=1)]))
    group = added.tag_group
    assert group.group_name == "资产等级" and [t.name for t in group.tag] == ["高净值", "普通"]
    high, normal = (t.id for t in group.tag)

    listed = await sb.client.get_corp_tag_list(group_ids=[group.group_id])
    assert [t.id for t in listed.tag_group[0].tag] == [high, normal]

    await sb.client.edit_corp_tag(high, name="私行客户")
    await sb.client.mark_tag("zhangsan", "wmcust0", add=[high, normal])
    await sb.client.mark_tag("zhangsan", "wmcust0", remove=[normal])
    contact = await sb.client.get_external_contact("wmcust0")
    tags = next(f.tags for f in contact.follow_user if f.userid == "zhangsan")
    assert [(t.group_name, t.tag_name, t.tag_id) for t in tags] == [("资产等级", "私行客户", high)]

    await sb.client.del_corp_tag(tag_ids=[high, normal])
    assert (await sb.client.get_corp_tag_list()).tag_group == []


async def test_welcome_message_single_use(sb: Sb) -> None:
    code = sb.state.issue_welcome_code("zhangsan", "wmcust2", sb.now)
    await sb.client.send_welcome_msg(code, text="欢迎！", attachments=[
        Attachment.of_link(title="开户指南", url="https://bank.example/guide")])
    delivered = sb.state.delivered_messages(kind="welcome", to="wmcust2")
    assert len(delivered) == 1
    with pytest.raises(WeComError) as info:
        await sb.client.send_welcome_msg(code, text="again")
    assert info.value.errcode == ErrCode.WELCOME_CODE_USED


async def test_contact_ways(sb: Sb) -> None:
    made = await sb.client.add_contact_way(ContactWay(type=1, scene=2, user=["zhangsan"], state="ch-poster",
                                                      remark="海报"))
    assert made.config_id and made.qr_code
    got = (await sb.client.get_contact_way(made.config_id)).contact_way
    assert (got.state, got.user, got.qr_code) == ("ch-poster", ["zhangsan"], made.qr_code)

    await sb.client.update_contact_way(ContactWay(config_id=made.config_id, remark="新海报"))
    assert (await sb.client.get_contact_way(made.config_id)).contact_way.remark == "新海报"

    for i in range(3):
        await sb.client.add_contact_way(ContactWay(type=2, scene=1, user=["zhangsan", "lisi"], state=f"s{i}"))
    ids = [c async for c in sb.client.iter_contact_ways(limit=2)]
    assert len(ids) == 4 and ids[0] == made.config_id
    page = await sb.client.list_contact_way(limit=3)
    assert len(page.contact_way) == 3 and page.next_cursor

    await sb.client.del_contact_way(made.config_id)
    with pytest.raises(WeComError) as info:
        await sb.client.get_contact_way(made.config_id)
    assert info.value.errcode == ErrCode.INVALID_PARAMETER
    await sb.client.close_temp_chat("zhangsan", "wmcust0")


async def test_groups_join_ways_and_welcome_template(sb: Sb) -> None:
    chats = [sb.state.create_group("zhangsan", f"代发群{i}", sb.now, members=["wmcust0", "wmcust1"])
             for i in range(3)]
    sb.state.create_group("lisi", "李四的群", sb.now)
    refs = [r.chat_id async for r in sb.client.iter_group_chats(owners=["zhangsan"], limit=2)]
    assert refs == [c.chat_id for c in chats]

    detail = (await sb.client.get_group_chat(chats[0].chat_id)).group_chat
    assert detail.owner == "zhangsan" and detail.member_version
    assert {(m.userid, m.type) for m in detail.member_list} == {("zhangsan", 1), ("wmcust0", 2), ("wmcust1", 2)}
    assert detail.member_list[1].invitor is not None and detail.member_list[1].invitor.userid == "zhangsan"

    way = await sb.client.add_join_way(JoinWay(scene=2, chat_id_list=[chats[0].chat_id], state="grp-qr"))
    info = (await sb.client.get_join_way(way.config_id)).join_way
    assert info.qr_code and info.state == "grp-qr"
    await sb.client.update_join_way(JoinWay(config_id=way.config_id, scene=2,
                                            chat_id_list=[c.chat_id for c in chats[:2]]))
    assert (await sb.client.get_join_way(way.config_id)).join_way.chat_id_list == [c.chat_id for c in chats[:2]]
    await sb.client.del_join_way(way.config_id)

    tpl = await sb.client.add_group_welcome_template(GroupWelcomeTemplate(text=Text(content="欢迎入群")))
    assert tpl.template_id in sb.state.group_welcome_templates


async def test_mass_send_lifecycle(sb: Sb) -> None:
    made = await sb.client.add_msg_template(MsgTemplate(external_userid=["wmcust1", "wmcust2", "wm-unknown"],
                                                        sender="zhangsan", text=Text(content="理财早知道")))
    assert made.msgid and made.fail_list == ["wm-unknown"]
    start = int(sb.now) - 60
    found = [m async for m in sb.client.iter_groupmsg_list("single", start, start + 3600)]
    assert [m.msgid for m in found] == [made.msgid] and found[0].text is not None
    assert found[0].text.content == "理财早知道"

    tasks = [t async for t in sb.client.iter_groupmsg_task(made.msgid)]
    assert [(t.userid, t.status) for t in tasks] == [("zhangsan", 0)]
    sb.server.confirm_msg_task(made.msgid, "zhangsan")
    results = [r async for r in sb.client.iter_groupmsg_send_result(made.msgid, "zhangsan", limit=1)]
    assert {(r.external_userid, r.status) for r in results} == {("wmcust1", 1), ("wmcust2", 1)}

    await sb.client.remind_groupmsg_send(made.msgid)
    await sb.client.cancel_groupmsg_send(made.msgid)
    with pytest.raises(WeComError):
        await sb.client.remind_groupmsg_send(made.msgid)


async def test_app_messages_and_card_update(sb: Sb) -> None:
    sent = await sb.client.send_text(["zhangsan", "nobody"], "您有 3 位客户今日生日")
    assert sent.msgid and sent.invaliduser == "nobody"
    await sb.client.send_textcard(["lisi"], "到期提醒", "王女士的理财明天到期", "https://bank.example/c/1",
                                  btntxt="详情")
    await sb.client.send_markdown(["lisi"], "**重要** 客户来访")
    card = {"card_type": "button_interaction", "task_id": "task-001",
            "main_title": {"title": "认领客户"},
            "button_list": [{"text": "认领", "key": "claim"}, {"text": "忽略", "key": "skip", "style": 2}]}
    sent_card = await sb.client.send_template_card(["zhangsan"], card)
    assert sent_card.response_code
    await sb.client.update_template_card(UpdateTemplateCard(userids=["zhangsan"], response_code=sent_card.response_code,
                                                            button=ReplaceButton(replace_name="已认领")))
    kinds = [d.msgtype for d in sb.state.delivered_messages(kind="app")]
    assert kinds == ["text", "textcard", "markdown", "template_card"]
    assert sb.state.delivered_messages(kind="card_update", to="zhangsan")

    # Duplicate check is on by default: the same text again is accepted but not delivered twice.
    await sb.client.send_message(AppMessage(touser="zhangsan", msgtype="text",
                                            text=Text(content="您有 3 位客户今日生日"), enable_duplicate_check=1))
    assert sb.state.dropped_messages(reason="duplicate")


async def test_media_and_moments(sb: Sb) -> None:
    media = await sb.client.upload_media("image", "poster.png", b"\x89PNG\r\n\x1a\n" + b"0" * 100,
                                         content_type="image/png")
    assert media.media_id in sb.state.media and media.created_at == int(sb.now)
    job = await sb.client.add_moment_task(MomentTask(
        text=Text(content="本周理财课堂"), attachments=[Attachment.of_image(media_id=media.media_id)],
        visible_range=VisibleRange(sender_list=SenderList(user_list=["zhangsan", "ghost"]))))
    result = await sb.client.get_moment_task_result(job.jobid)
    assert result.status == 3 and result.result is not None
    assert result.result.moment_id and result.result.invalid_sender_list is not None
    assert result.result.invalid_sender_list.user_list == ["ghost"]


async def test_transfers_and_unassigned(sb: Sb) -> None:
    started = await sb.client.transfer_customer("zhangsan", "lisi", ["wmcust3", "wm-none"],
                                                transfer_success_msg="您好，我是新的客户经理")
    assert [(c.external_userid, c.errcode) for c in started.customer] == [("wmcust3", 0), ("wm-none", 40096)]
    assert [(r.external_userid, r.status) async for r in sb.client.iter_transfer_result("zhangsan", "lisi")] == [
        ("wmcust3", 2)]
    sb.clock.advance(86400 + 1)
    done = await sb.client.transfer_result("zhangsan", "lisi")
    assert done.customer[0].status == 1 and done.customer[0].takeover_time

    sb.state.resign_member("wangwu", sb.now)
    unassigned = [(u.handover_userid, u.external_userid) async for u in sb.client.iter_unassigned(page_size=1)]
    assert unassigned == [("wangwu", "wmcust0")]
    moved = await sb.client.transfer_customer("wangwu", "zhangsan", ["wmcust0"], resigned=True)
    assert moved.customer[0].errcode == 0
    assert [r.status async for r in sb.client.iter_transfer_result("wangwu", "zhangsan", resigned=True)] == [2]


async def test_oauth_getuserinfo(sb: Sb) -> None:
    member = await sb.client.get_user_info(sb.server.issue_oauth_code("zhangsan"))
    assert member.userid == "zhangsan" and member.openid is None
    viewer = await sb.client.get_user_info(sb.server.issue_oauth_code("wmcust0"))
    assert viewer.external_userid == "wmcust0" and viewer.openid
    with pytest.raises(WeComError) as info:
        await sb.client.get_user_info("used-or-bogus")
    assert info.value.errcode == ErrCode.INVALID_CODE


# ------------------------------------------------------------------------------ failure modes

async def test_busy_and_freq_limit_faults_are_absorbed(sb: Sb) -> None:
    sb.server.faults.system_busy("externalcontact/get_corp_tag_list", count=2)
    sb.server.faults.freq_limit("externalcontact/get_corp_tag_list", count=1)
    t0 = sb.clock.monotonic()
    await sb.client.get_corp_tag_list()
    assert [f.errcode for f in sb.server.faults.fired] == [-1, -1, 45009]
    assert sb.clock.monotonic() - t0 >= 2.0  # backoffs plus the 45009 pause
    assert sb.client.limiter.bucket("externalcontact/get_corp_tag_list").factor == 0.5


async def test_dropped_reply_took_effect_and_is_ambiguous(sb: Sb) -> None:
    await sb.client.get_corp_tag_list()  # token in hand
    sb.server.faults.drop_reply("externalcontact/add_msg_template")
    with pytest.raises(AmbiguousCallError):
        await sb.client.add_msg_template(MsgTemplate(external_userid=["wmcust1"], sender="zhangsan",
                                                     text=Text(content="hi")))
    # Not retried by the client, and the effect is there: the outbox must reconcile, not resend.
    assert len(sb.state.received_calls("externalcontact/add_msg_template")) == 1
    assert len(sb.state.msg_templates) == 1


async def test_slow_reply_times_out_as_ambiguous(aiohttp_server: AiohttpServer) -> None:
    env, client = await start(aiohttp_server, timeout_s=0.3)
    env.state.add_member("zhangsan", "张三")
    async with client:
        await client.get_corp_tag_list()
        env.server.faults.slow("message/send", 1.0)
        with pytest.raises(AmbiguousCallError):
            await client.send_text(["zhangsan"], "hello")


@pytest.mark.parametrize("how", ["expire", "revoke"])
async def test_token_expired_or_revoked_mid_run(sb: Sb, how: str) -> None:
    await sb.client.get_corp_tag_list()
    if how == "expire":
        sb.server.expire_all_tokens()  # 42001
    else:
        sb.state.revoke_all_tokens()  # 40014
    await sb.client.get_corp_tag_list()
    assert len(sb.state.tokens) == 2


async def test_client_limits_keep_sandbox_from_answering_45009(aiohttp_server: AiohttpServer) -> None:
    """Same limit on both sides: our bucket never lets a burst trip the sandbox's minute counter."""
    env, client = await start(aiohttp_server, sandbox_per_minute=20, per_api_per_minute=20)
    async with client:
        for _ in range(70):
            await client.get_corp_tag_list()
    # No 45009 was ever answered: no penalty slowed the bucket, every call went through once.
    assert len(env.state.received_calls("externalcontact/get_corp_tag_list")) == 70
    assert client.limiter.bucket("externalcontact/get_corp_tag_list").factor == 1.0
