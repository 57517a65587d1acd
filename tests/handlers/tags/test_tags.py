"""change_external_tag keeps the local catalog in step (create/update/delete/shuffle)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from handlers.tags import catalog as tagcatalog
from handlers.tags.models import FollowTag, Tag, TagGroup
from tests.support.stack import Stack, stack


async def _catalog(s: Stack) -> dict[str, tuple[str, bool, int]]:
    """tag_id → ("group/tag", deleted, order)."""
    async with s.runtime.sessions() as session:
        rows = await session.execute(select(Tag.tag_id, TagGroup.name, Tag.name, Tag.deleted, Tag.order)
                                     .join(TagGroup, Tag.group_id == TagGroup.group_id))
        return {i: (f"{g}/{t}", d, o) for i, g, t, d, o in rows.all()}


async def _refresh(s: Stack) -> None:
    async with s.runtime.sessions() as session, session.begin():
        await tagcatalog.refresh(session, s.wecom)


async def test_create_update_delete_shuffle(db_url: str, tmp_path: Path) -> None:
    async with stack(db_url, tmp_path) as s:
        await _refresh(s)
        # create: a tag in an existing group, and a new group (one tag_group event)
        await s.driver.create_tag("兴趣", "书画")
        await s.driver.create_tag("活动", "双十一")
        await s.run()
        names = {v[0] for v in (await _catalog(s)).values() if not v[1]}
        assert {"兴趣/书画", "活动/双十一"} <= names
        # update: rename a tag and a group
        await s.driver.edit_tag(s.ids.tags["兴趣/旅游"], "出游")
        await s.driver.edit_tag(s.ids.tag_groups["产品持有"], "持有产品")
        await s.run()
        cat = await _catalog(s)
        assert cat[s.ids.tags["兴趣/旅游"]][0] == "兴趣/出游"
        assert cat[s.ids.tags["产品持有/代发"]][0] == "持有产品/代发"
        # delete a tag: gone from the catalog and from every relation
        await s.run()
        ext = s.ids.customers["刘洋"]
        await s.driver.edit_external_contact("zhangwei", ext)  # mirror the relation's tags
        await s.run()
        await s.driver.delete_tag(s.ids.tags["兴趣/旅游"])
        await s.run()
        assert (await _catalog(s))[s.ids.tags["兴趣/旅游"]][1] is True
        async with s.runtime.sessions() as session:
            left = set((await session.scalars(select(FollowTag.tag_id).where(FollowTag.external_userid == ext))).all())
        assert s.ids.tags["兴趣/旅游"] not in left and s.ids.tags["产品持有/按揭"] in left
        # delete a whole group: its tags go too (WeCom sends no per-tag deletes)
        await s.driver.delete_tag_group(s.ids.tag_groups["客户等级"])
        await s.run()
        cat = await _catalog(s)
        assert all(cat[s.ids.tags[f"客户等级/{t}"]][1] for t in ("V0", "V1", "V2", "V3", "VIP", "VVIP"))
        # shuffle one group, then all groups (no id: a full re-read)
        group = s.state.tag_groups[s.ids.tag_groups["兴趣"]]
        for tag_id in group.tag_ids:
            s.state.tags[tag_id].order = 100 + len(s.state.tags[tag_id].name)
        await s.driver.shuffle_tags(group.group_id)
        await s.run()
        assert (await _catalog(s))[s.ids.tags["兴趣/理财"]][2] == 102
        s.state.tags[s.ids.tags["产品持有/理财"]].order = 77
        await s.driver.shuffle_tags()
        await s.run()
        assert (await _catalog(s))[s.ids.tags["产品持有/理财"]][2] == 77


async def test_ambiguous_event_rereads_everything(sqlite_url: str, tmp_path: Path) -> None:
    """An update for a tag WeCom no longer returns (deleted since): full re-read."""
    async with stack(sqlite_url, tmp_path) as s:
        await _refresh(s)
        tag_id = s.ids.tags["兴趣/健康"]
        out = await s.driver.edit_tag(tag_id, "养生")
        s.state.delete_tag(tag_id)  # deleted before we processed the update
        await s.run()
        assert out.delivered
        assert (await _catalog(s))[tag_id][1] is True
        gets = [c.body for c in s.calls("externalcontact/get_corp_tag_list")]
        assert {"tag_id": [tag_id]} in gets and {} in gets
