"""Contact events against the sandbox over HTTP: welcome, tags, edits, deletions, transfers."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from handlers.contacts.models import Customer, Follow
from handlers.tags.models import FollowTag, Tag, TagGroup
from handlers.timeline.models import Timeline
from scrm.sandbox.records import Limits
from tests.support.playbooks import MATERIALS
from tests.support.stack import Stack, stack

WELCOME = "externalcontact/send_welcome_msg"
MARK_TAG = "externalcontact/mark_tag"


async def _follow(s: Stack, userid: str, ext: str) -> Follow | None:
    async with s.runtime.sessions() as session:
        return (await session.scalars(select(Follow).where(Follow.userid == userid,
                                                           Follow.external_userid == ext))).first()


async def _tags_of(s: Stack, userid: str, ext: str) -> set[str]:
    async with s.runtime.sessions() as session:
        rows = await session.execute(
            select(TagGroup.name, Tag.name).join(Tag, Tag.group_id == TagGroup.group_id)
            .join(FollowTag, FollowTag.tag_id == Tag.tag_id)
            .where(FollowTag.userid == userid, FollowTag.external_userid == ext))
        return {f"{g}/{t}" for g, t in rows.all()}


def _wecom_tags(s: Stack, userid: str, ext: str) -> set[str]:
    relation = s.state.follow(userid, ext)
    assert relation is not None
    out = set()
    for tag_id in relation.tag_ids:
        tag = s.state.tags[tag_id]
        out.add(f"{s.state.tag_groups[tag.group_id].group_name}/{tag.name}")
    return out


async def test_add_from_channel_welcomes_tags_and_mirrors(db_url: str, tmp_path: Path) -> None:
    async with stack(db_url, tmp_path) as s:
        out = await s.driver.add_external_contact("chenjing", name="钱多多", state="wealth-salon")
        assert out.delivered
        await s.run()
        ext = out.fields["ExternalUserID"]
        welcomes = s.state.delivered_messages(kind="welcome", to=ext)
        assert len(welcomes) == 1
        assert welcomes[0].content["text"]["content"] == "感谢参加理财沙龙，我是陈静。"
        # 渠道/理财沙龙 did not exist in WeCom: created on the fly; 兴趣/理财 already did.
        assert _wecom_tags(s, "chenjing", ext) == {"渠道/理财沙龙", "兴趣/理财"}
        assert len(s.calls(MARK_TAG)) == 1
        follow = await _follow(s, "chenjing", ext)
        assert follow is not None and follow.state == "wealth-salon" and follow.status == "active"
        assert follow.add_way == 1
        assert await _tags_of(s, "chenjing", ext) == {"渠道/理财沙龙", "兴趣/理财"}
        async with s.runtime.sessions() as session:
            customer = await session.get(Customer, ext)
            kinds = (await session.scalars(select(Timeline.kind).where(Timeline.subject_id == ext))).all()
        assert customer is not None and customer.name == "钱多多"
        assert "external_contact.add" in kinds


async def test_welcome_renders_names_and_link(sqlite_url: str, tmp_path: Path) -> None:
    async with stack(sqlite_url, tmp_path) as s:
        out = await s.driver.add_external_contact("zhangwei", name="王小二", state="payroll-onboarding")
        await s.run()
        (welcome,) = s.state.delivered_messages(kind="welcome")
        assert welcome.content["text"]["content"] == "王小二您好，代发开卡礼请查收。"
        (link,) = welcome.content["attachments"]
        assert link["link"]["title"] == "代发开卡礼" and link["link"]["picurl"].endswith("gift.jpg")
        # An unknown state gets the default welcome and no tags.
        out = await s.driver.add_external_contact("lina", name="赵六", state="unknown-state")
        await s.run()
        ext = out.fields["ExternalUserID"]
        (welcome,) = s.state.delivered_messages(kind="welcome", to=ext)
        assert welcome.content["text"]["content"] == "赵六您好，我是李娜，很高兴为您服务。"
        assert s.state.follow("lina", ext).tag_ids == []  # type: ignore[union-attr]


async def test_a_manager_the_directory_does_not_know_is_named_politely(sqlite_url: str, tmp_path: Path) -> None:
    """A member added to WeCom after the last directory sync: the customer reads 「客户经理」, never
    the internal userid."""
    async with stack(sqlite_url, tmp_path) as s:
        s.state.add_member("newhire01", "新同事")  # in WeCom, not yet in the service's directory
        out = await s.driver.add_external_contact("newhire01", name="赵六", state="unknown-state")
        await s.run()
        (welcome,) = s.state.delivered_messages(kind="welcome", to=out.fields["ExternalUserID"])
        assert welcome.content["text"]["content"] == "赵六您好，我是客户经理，很高兴为您服务。"


async def test_duplicates_and_replays_do_nothing_twice(db_url: str, tmp_path: Path) -> None:
    async with stack(db_url, tmp_path) as s:
        out = await s.driver.add_external_contact("zhangwei", name="孙七", state="lobby-chengxi")
        for _ in range(3):  # WeCom's retries: the same event three more times
            assert await s.redeliver(out) == 200
        await s.run()
        assert len(s.calls(WELCOME)) == 1
        assert len(s.calls(MARK_TAG)) == 1
        # An operator replays every event: no new welcome, no new tag call.
        assert await s.runtime.inbox.replay(dead_only=False) >= 1
        await s.run()
        assert len(s.calls(WELCOME)) == 1
        assert len(s.calls(MARK_TAG)) == 1
        assert len(await s.outbox_rows(WELCOME)) == 1


async def test_no_welcome_code_sends_nothing(sqlite_url: str, tmp_path: Path) -> None:
    async with stack(sqlite_url, tmp_path) as s:
        out = await s.driver.add_external_contact("zhangwei", name="周八", state="lobby-chengxi", welcome_code=False)
        await s.run()
        assert s.calls(WELCOME) == []
        assert await s.outbox_rows(WELCOME) == []
        # ... but the customer is registered and tagged.
        assert _wecom_tags(s, "zhangwei", out.fields["ExternalUserID"]) == {"渠道/网点大堂"}


async def test_half_contact_is_welcomed(sqlite_url: str, tmp_path: Path) -> None:
    async with stack(sqlite_url, tmp_path) as s:
        out = await s.driver.add_half_external_contact("zhangwei", name="吴九", state="payroll-onboarding")
        await s.run()
        assert len(s.state.delivered_messages(kind="welcome", to=out.fields["ExternalUserID"])) == 1


async def test_code_already_used_is_not_an_error(sqlite_url: str, tmp_path: Path) -> None:
    async with stack(sqlite_url, tmp_path) as s:
        out = await s.driver.add_external_contact("zhangwei", name="郑十", state="lobby-chengxi")
        await s.wecom.send_welcome_msg(out.fields["WelcomeCode"], text="别的系统先发了")  # code now used
        await s.run()
        (row,) = await s.outbox_rows(WELCOME)
        assert row.status == "sent" and row.result == {"errcode": 41051, "note": "already done"}


async def test_expired_window_is_counted_as_missed(sqlite_url: str, tmp_path: Path) -> None:
    async with stack(sqlite_url, tmp_path) as s:
        await s.driver.add_external_contact("zhangwei", name="迟到", state="lobby-chengxi")
        s.clock.advance(21)
        await s.run()
        (row,) = await s.outbox_rows(WELCOME)
        assert row.status == "failed" and "window missed" in (row.last_error or "")
        assert s.calls(WELCOME) == []


async def test_follow_user_paging(sqlite_url: str, tmp_path: Path) -> None:
    """externalcontact/get pages follow_user (2 per page here): the third follower is found."""
    async with stack(sqlite_url, tmp_path, limits=Limits(follow_user_page=2)) as s:
        ext = s.ids.customers["王芳"]  # followed by zhangwei
        await s.driver.add_external_contact("lina", ext, state="lobby-chengxi", welcome_code=False)
        out = await s.driver.add_external_contact("chenjing", ext, state="wealth-salon")
        await s.run()
        assert len(s.calls("externalcontact/get")) >= 2 + 2  # two events, two pages each
        follow = await _follow(s, "chenjing", ext)
        assert follow is not None and follow.state == "wealth-salon"
        assert len(s.state.delivered_messages(kind="welcome", to=ext)) == 1
        assert out.fields["ExternalUserID"] == ext


async def test_welcome_that_cannot_render_tells_the_manager(sqlite_url: str, tmp_path: Path) -> None:
    channels = """\
    default_welcome: t-welcome-crm
    channels:
      lobby-chengxi: {name: 城西支行大堂, managers: [zhangwei], tags: [渠道/网点大堂]}
    """
    async with stack(sqlite_url, tmp_path, channels=channels, materials=MATERIALS) as s:
        out = await s.driver.add_external_contact("zhangwei", name="冯十一", state="lobby-chengxi")
        await s.run()
        ext = out.fields["ExternalUserID"]
        assert s.calls(WELCOME) == []
        (notice,) = s.app_messages("zhangwei")
        assert "冯十一" in notice and "crm.tier" in notice
        async with s.runtime.sessions() as session:
            kinds = (await session.scalars(select(Timeline.kind).where(Timeline.subject_id == ext))).all()
        assert "welcome.failed" in kinds
        # The rest of the work still happened.
        assert _wecom_tags(s, "zhangwei", ext) == {"渠道/网点大堂"}


async def test_missing_tag_that_cannot_be_created_is_a_loud_retry(sqlite_url: str, tmp_path: Path) -> None:
    async with stack(sqlite_url, tmp_path) as s:
        s.server.faults.error("externalcontact/add_corp_tag", 60011, count=10)
        out = await s.driver.add_external_contact("chenjing", name="陈十二", state="wealth-salon")
        await s.run()
        # The welcome went out regardless; the tag step failed on its own, naming the tag.
        assert len(s.calls(WELCOME)) == 1
        counts = await s.runtime.inbox.counts()
        assert counts.get("pending") == 1
        from scrm.kernel.models import InboxEvent
        async with s.runtime.sessions() as session:
            row = (await session.scalars(select(InboxEvent).where(InboxEvent.status == "pending"))).one()
        assert "渠道/理财沙龙" in (row.last_error or "") and "60011" in (row.last_error or "")
        # WeCom lets us again: the retry tags the customer.
        s.server.faults.clear()
        s.clock.advance(5)
        await s.run()
        assert _wecom_tags(s, "chenjing", out.fields["ExternalUserID"]) == {"渠道/理财沙龙", "兴趣/理财"}


async def test_edit_refreshes_remark_and_tags(db_url: str, tmp_path: Path) -> None:
    async with stack(db_url, tmp_path) as s:
        ext = s.ids.customers["刘洋"]
        await s.driver.edit_external_contact("zhangwei", ext, remark="刘洋-按揭-VIP",
                                             add_tags=[s.ids.tags["兴趣/理财"]],
                                             remove_tags=[s.ids.tags["兴趣/旅游"]])
        await s.run()
        follow = await _follow(s, "zhangwei", ext)
        assert follow is not None and follow.remark == "刘洋-按揭-VIP"
        async with s.runtime.sessions() as session:
            ids = set((await session.scalars(select(FollowTag.tag_id).where(FollowTag.external_userid == ext))).all())
        assert ids == {s.ids.tags["客户等级/V2"], s.ids.tags["产品持有/按揭"], s.ids.tags["兴趣/理财"]}


async def test_customer_removes_manager_is_churn(db_url: str, tmp_path: Path) -> None:
    async with stack(db_url, tmp_path) as s:
        out = await s.driver.add_external_contact("zhangwei", name="褚十三", state="lobby-chengxi")
        await s.run()
        ext = out.fields["ExternalUserID"]
        dup = await s.driver.del_follow_user("zhangwei", ext)
        await s.redeliver(dup)
        await s.run()
        follow = await _follow(s, "zhangwei", ext)
        assert follow is not None and follow.status == "lost" and follow.status_reason == "del_follow_user"
        churn = [m for m in s.app_messages("zhangwei") if "客户流失" in m]
        assert len(churn) == 1 and "褚十三" in churn[0] and "城西支行大堂" in churn[0]
        assert await _tags_of(s, "zhangwei", ext) == set()


async def test_manager_removes_customer_and_transfer(db_url: str, tmp_path: Path) -> None:
    async with stack(db_url, tmp_path) as s:
        a, b = s.ids.customers["王芳"], s.ids.customers["黄磊"]
        await s.driver.del_external_contact("zhangwei", a)
        await s.driver.del_external_contact("zhangwei", b, source="DELETE_BY_TRANSFER")
        c = s.ids.customers["周杰"]
        await s.driver.transfer_fail("wangqiang", c, reason="customer_refused")
        await s.run()
        fa, fb = await _follow(s, "zhangwei", a), await _follow(s, "zhangwei", b)
        assert fa is not None and fa.status == "removed"
        assert fb is not None and fb.status == "transferred"
        assert s.app_messages("zhangwei") == []  # neither is churn
        # transfer_fail: the customer stays with lina; the reason is on that relation.
        await s.driver.edit_external_contact("lina", c)  # brings the relation into the mirror
        await s.driver.transfer_fail("wangqiang", c, reason="customer_limit_exceed")
        await s.run()
        fc = await _follow(s, "lina", c)
        assert fc is not None and fc.status == "active" and fc.status_reason == "transfer_fail:customer_limit_exceed"


# The sandbox clock starts on 2026-11-02: these welcome materials expired two days before.
PAYROLL_LINK = "  link: {title: 代发开卡礼"
EXPIRED_PAYROLL = MATERIALS.replace(PAYROLL_LINK, "  valid_until: 2026-10-31\n" + PAYROLL_LINK)
DEFAULT_TEXT = "text: \"{customer.name}您好，我是{manager.name}，很高兴为您服务。\""
EXPIRED_BOTH = EXPIRED_PAYROLL.replace(DEFAULT_TEXT, DEFAULT_TEXT + "\n  valid_until: 2026-10-31")


async def test_expired_channel_welcome_gives_way_to_the_default(sqlite_url: str, tmp_path: Path) -> None:
    assert EXPIRED_PAYROLL != MATERIALS
    async with stack(sqlite_url, tmp_path, materials=EXPIRED_PAYROLL) as s:
        out = await s.driver.add_external_contact("zhangwei", name="王小二", state="payroll-onboarding")
        await s.run()
        (welcome,) = s.state.delivered_messages(kind="welcome", to=out.fields["ExternalUserID"])
        assert welcome.content["text"]["content"] == "王小二您好，我是张伟，很高兴为您服务。"


async def test_no_sendable_welcome_is_skipped_and_the_manager_told(sqlite_url: str, tmp_path: Path) -> None:
    assert EXPIRED_BOTH != EXPIRED_PAYROLL
    async with stack(sqlite_url, tmp_path, materials=EXPIRED_BOTH) as s:
        out = await s.driver.add_external_contact("zhangwei", name="冯十一", state="payroll-onboarding")
        await s.run()
        ext = out.fields["ExternalUserID"]
        assert s.calls(WELCOME) == []  # stale content is never sent
        (notice,) = s.app_messages("zhangwei")
        assert "冯十一" in notice and "expired on 2026-10-31" in notice
        async with s.runtime.sessions() as session:
            details = (await session.scalars(select(Timeline.detail).where(Timeline.subject_id == ext,
                                                                          Timeline.kind == "welcome.failed"))).all()
        assert [d["reason"] for d in details] == ["material 't-welcome-payroll' expired on 2026-10-31 (valid_until)"]
