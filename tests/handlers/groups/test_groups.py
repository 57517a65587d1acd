"""Customer groups against the sandbox over HTTP: registry, member versions, caps, QR pools,
flash-sale lifetimes, dismissal."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from handlers.groups.groupsync import sync_all
from handlers.groups.models import GroupChat, GroupMember, GroupPool
from scrm.kernel.models import DueJob
from tests.support.stack import Stack, stack

GET = "externalcontact/groupchat/get"
UPDATE_WAY = "externalcontact/groupchat/update_join_way"


async def _group(s: Stack, chat_id: str) -> GroupChat:
    async with s.runtime.sessions() as session:
        group = await session.get(GroupChat, chat_id)
    assert group is not None
    return group


async def _members(s: Stack, chat_id: str, *, active: bool = True) -> dict[str, GroupMember]:
    async with s.runtime.sessions() as session:
        stmt = select(GroupMember).where(GroupMember.chat_id == chat_id)
        if active:
            stmt = stmt.where(GroupMember.left_at.is_(None))
        return {m.member_id: m for m in (await session.scalars(stmt)).all()}


async def _pool(s: Stack, group_type: str) -> GroupPool:
    async with s.runtime.sessions() as session:
        pool = await session.get(GroupPool, group_type)
    assert pool is not None
    return pool


async def _sync_pools(s: Stack) -> None:
    playbook = s.runtime.playbook.current
    results = await sync_all(s.runtime.sessions, s.wecom, playbook, s.clock, s.settings.playbook.materials_dir,
                             s.runtime.scheduler)
    assert all(r.ok for r in results), results


def _way_chats(s: Stack, config_id: str | None) -> list[str]:
    assert config_id is not None
    return list(s.state.join_ways[config_id].body["chat_id_list"])


async def test_create_registers_and_classifies(db_url: str, tmp_path: Path) -> None:
    async with stack(db_url, tmp_path) as s:
        c = s.ids.customers
        payroll = await s.driver.create_group("zhangwei", "城西科技园代发群", members=[c["王芳"], c["黄磊"]])
        vip = await s.driver.create_group("chenjing", "吴总的群", members=[c["吴刚"]])
        explicit = await s.driver.create_group("lina", "三号楼邻居", chat_id="wr-explicit-0001")
        other = await s.driver.create_group("lina", "随便聊聊")
        await s.run()
        group = await _group(s, payroll.fields["ChatId"])
        assert (group.group_type, group.owner, group.member_count, group.status) == ("payroll", "zhangwei", 3, "active")
        assert group.member_version == s.state.groups[group.chat_id].member_version
        members = await _members(s, group.chat_id)
        assert members[c["王芳"]].type == 2 and members["zhangwei"].type == 1
        assert (await _group(s, vip.fields["ChatId"])).group_type == "vip"
        assert (await _group(s, explicit.fields["ChatId"])).group_type == "regional"
        assert (await _group(s, other.fields["ChatId"])).group_type is None


async def test_joins_and_quits_with_matching_versions(db_url: str, tmp_path: Path) -> None:
    async with stack(db_url, tmp_path) as s:
        c = s.ids.customers
        chat_id = (await s.driver.create_group("zhangwei", "代发二群", members=[c["王芳"]])).fields["ChatId"]
        await s.run()
        reads = len(s.calls(GET))
        await s.driver.join_group(chat_id, [c["黄磊"], c["刘洋"]], join_scene=3)
        await s.run()
        await s.driver.leave_group(chat_id, [c["王芳"]], quit_scene=1)
        await s.run()
        assert len(s.calls(GET)) == reads  # both applied as deltas, no re-read
        group = await _group(s, chat_id)
        assert group.member_count == 3 and group.member_version == s.state.groups[chat_id].member_version
        members = await _members(s, chat_id, active=False)
        assert members[c["黄磊"]].join_scene == 3 and members[c["黄磊"]].left_at is None  # 3 = scanned a QR code
        assert members[c["王芳"]].left_at is not None and members[c["王芳"]].quit_scene == 1


async def test_mismatching_version_rereads_the_group(db_url: str, tmp_path: Path) -> None:
    async with stack(db_url, tmp_path) as s:
        c = s.ids.customers
        chat_id = (await s.driver.create_group("zhangwei", "代发三群", members=[c["王芳"]])).fields["ChatId"]
        await s.run()
        reads = len(s.calls(GET))
        # An add_member event we never received (WeCom gave up retrying) ...
        s.state.add_group_members(chat_id, [c["刘洋"]], s.clock.now().timestamp())
        # ... so the next one's LastMemVer does not match what we stored.
        await s.driver.join_group(chat_id, [c["黄磊"]], join_scene=1)
        await s.run()
        assert len(s.calls(GET)) == reads + 1
        members = await _members(s, chat_id)
        assert set(members) == {"zhangwei", c["王芳"], c["刘洋"], c["黄磊"]}
        assert members[c["黄磊"]].join_scene == 2  # event 1 (invite link) = groupchat/get 2
        assert (await _group(s, chat_id)).member_version == s.state.groups[chat_id].member_version
        # Same for quits: one missed, the next re-reads and keeps the event's quit scene.
        s.state.remove_group_members(chat_id, [c["刘洋"]])
        await s.driver.leave_group(chat_id, [c["黄磊"]], quit_scene=0)
        await s.run()
        assert set(await _members(s, chat_id)) == {"zhangwei", c["王芳"]}
        gone = await _members(s, chat_id, active=False)
        assert gone[c["黄磊"]].quit_scene == 0 and gone[c["刘洋"]].left_at is not None
        assert (await _group(s, chat_id)).member_count == 2


async def test_cap_reached_rotates_the_pool(db_url: str, tmp_path: Path) -> None:
    """elderly: cap 5, pool of 2 chats. Full groups leave the pool; when none has room the owner is
    asked once for a new group, which joins the pool when it is created."""
    async with stack(db_url, tmp_path) as s:
        first = s.ids.groups["银发兴趣群"]  # lina + 2 customers
        second = (await s.driver.create_group("lina", "乐龄二群")).fields["ChatId"]
        await s.run()
        await _sync_pools(s)
        pool = await _pool(s, "elderly")
        assert pool.chat_ids == [first, second] and _way_chats(s, pool.config_id) == [first, second]
        assert pool.qr_code.startswith("https://")
        third = (await s.driver.create_group("lina", "乐龄三群")).fields["ChatId"]
        await s.run()
        assert (await _pool(s, "elderly")).chat_ids == [first, second]  # pool is full (size 2)
        # first reaches the cap (3 + 2 = 5): rotated out, third takes its place
        await s.driver.join_group(first, ["wmjoin0001", "wmjoin0002"], join_scene=3)
        await s.run()
        assert _way_chats(s, pool.config_id) == [second, third]
        assert len(s.calls(UPDATE_WAY)) == 1
        # second and third fill up: no room anywhere, the owner is asked (once) for a new group
        await s.driver.join_group(second, [f"wmjoin01{i:02d}" for i in range(4)], join_scene=3)
        await s.driver.join_group(third, [f"wmjoin02{i:02d}" for i in range(3)], join_scene=3)
        await s.driver.join_group(third, ["wmjoin0299"], join_scene=3)
        await s.run()
        asks = [m for m in s.app_messages("lina") if "需要新建群" in m]
        assert len(asks) == 1 and "银发兴趣群" in asks[0]
        assert (await _pool(s, "elderly")).needs_room is True
        # the owner opens a new group: it joins the pool
        fourth = (await s.driver.create_group("lina", "乐龄四群")).fields["ChatId"]
        await s.run()
        pool = await _pool(s, "elderly")
        assert pool.chat_ids == [fourth] and _way_chats(s, pool.config_id) == [fourth] and not pool.needs_room
        # over the cap (5 → 6): the owner gets a task
        await s.driver.join_group(first, ["wmjoin0003"], join_scene=0)
        await s.run()
        over = [m for m in s.app_messages("lina") if "群人数超限" in m]
        assert len(over) == 1 and "6 人" in over[0]


async def test_flash_group_tasks_and_lifetime_reminder(db_url: str, tmp_path: Path) -> None:
    async with stack(db_url, tmp_path) as s:
        c = s.ids.customers
        flash = (await s.driver.create_group("zhangwei", "双十一快闪群", members=[c["王芳"]])).fields["ChatId"]
        early = (await s.driver.create_group("zhangwei", "周末快闪群")).fields["ChatId"]
        await s.run()
        async with s.runtime.sessions() as session:
            jobs = (await session.scalars(select(DueJob.job_key))).all()
        assert set(jobs) >= {f"group_lifetime:{flash}", f"group_lifetime:{early}"}
        # customers join a flash-sale group: a task for the owner (names of those we know)
        await s.driver.add_external_contact("zhangwei", c["刘洋"], state="lobby-chengxi", welcome_code=False)
        await s.driver.join_group(flash, [c["刘洋"], "wmstranger01"], join_scene=3)
        await s.run()
        tasks = [m for m in s.app_messages("zhangwei") if "快闪群任务" in m]
        assert len(tasks) == 1 and "刘洋及另外1位新成员" in tasks[0]
        # the other one closes early: no reminder for it
        await s.driver.dismiss_group(early)
        await s.run()
        s.clock.advance(days=6, hours=23)
        await s.runtime.scheduler.tick()
        await s.run()
        assert not [m for m in s.app_messages("zhangwei") if "到期" in m]
        s.clock.advance(hours=2)
        await s.runtime.scheduler.tick()
        await s.run()
        await s.runtime.scheduler.tick()
        await s.runtime.inbox.replay(dead_only=False)
        await s.run()
        due = [m for m in s.app_messages("zhangwei") if "快闪群到期" in m]
        assert len(due) == 1 and "双十一快闪群" in due[0] and "7 天" in due[0]


async def test_dismiss_leaves_registry_and_pool(db_url: str, tmp_path: Path) -> None:
    async with stack(db_url, tmp_path) as s:
        first = s.ids.groups["银发兴趣群"]
        second = (await s.driver.create_group("lina", "乐龄二群")).fields["ChatId"]
        await s.run()
        await _sync_pools(s)
        await s.driver.dismiss_group(first)
        await s.run()
        group = await _group(s, first)
        assert group.status == "dismissed" and group.member_count == 0
        assert await _members(s, first) == {}
        pool = await _pool(s, "elderly")
        assert pool.chat_ids == [second] and _way_chats(s, pool.config_id) == [second]
