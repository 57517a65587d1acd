"""The SOP sends coming to a customer in the next 14 days ("What's open"), on SQLite and
PostgreSQL: a path's 1:1 steps from the day the relation began, a group calendar's posts in a
group they are in and its ``to: members`` steps; what was sent drops out, the opt-out tag
stops everything. Expected dates are worked out here from the SOP files' own day offsets."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from handlers.contacts.models import Customer, Follow
from handlers.sop.api import SopSend
from handlers.tags.api import FollowTag, Tag, TagGroup
from tests.handlers.sidebar.support import ADDED, SH, START, seed, sidebar_stack, sign_in
from tests.support.playbooks import REPO
from tests.support.stack import Stack

NEW_CONTACT = (REPO / "sop" / "paths" / "new-contact.yaml").read_text()  # +1 day and +7 days at 10:00: sends
GROUP_DAYS = (156, 157)  # the calendar's steps, days after the group was created (2026-06-01)
CALENDAR = f"""\
calendar: sidebar-upcoming
name: 代发群测试日历
group_type: payroll
steps:
  - {{day: {GROUP_DAYS[0]}, at: "12:10", send: s-weekly}}
  - {{day: {GROUP_DAYS[1]}, at: "12:10", send: s-weekly, to: members}}
"""
NEW_ADDED = START - timedelta(hours=1)  # 赵敏 added zhangwei this morning


def at(day: datetime, hh: int, mm: int) -> str:
    return day.astimezone(SH).replace(hour=hh, minute=mm).strftime("%m-%d %H:%M")


async def upcoming(s: Stack, ext: str) -> list[tuple[str, str, str, str]]:
    resp = await s.client.get(f"/sidebar/data/customer/{ext}")
    assert resp.status == 200, await resp.text()
    body: dict[str, Any] = json.loads(await resp.text())
    return [(u["at"], u["material"], u["sop"], u["via"]) for u in body["upcoming"]]


async def test_the_next_two_weeks_of_sop_sends(db_url: str, tmp_path: Path) -> None:
    async with sidebar_stack(db_url, tmp_path, paths={"new-contact": NEW_CONTACT},
                             calendars={"sidebar-upcoming": CALENDAR}) as s:
        demo = await seed(s)
        zhaomin = s.ids.customers["赵敏"]
        async with s.runtime.sessions() as db, db.begin():
            db.add_all([Customer(external_userid=zhaomin, name="赵敏", updated_at=NEW_ADDED),
                        Follow(userid="zhangwei", external_userid=zhaomin, remark="赵敏", add_way=1,
                               created_at=NEW_ADDED)])
        await sign_in(s, "zhangwei")
        # 王芳 joined 代发工资群 (created 06-01): its post, and its 1:1 step to members who are
        # the owner's contacts. Her relation is months old: the new-contact path is long past.
        assert await upcoming(s, demo.wangfang) == [
            (at(ADDED + timedelta(days=GROUP_DAYS[0]), 12, 10), "s-weekly", "代发群测试日历", "代发工资群"),
            (at(ADDED + timedelta(days=GROUP_DAYS[1]), 12, 10), "s-weekly", "代发群测试日历", "1:1")]
        # 赵敏 was added today: day 1 and day 7 of the new-contact path (day 30 is a task, and later).
        day1, day7 = (at(NEW_ADDED + timedelta(days=n), 10, 0) for n in (1, 7))
        assert await upcoming(s, zhaomin) == [(day1, "new-contact-day1", "新客户 首月关怀", "1:1"),
                                              (day7, "new-contact-day7", "新客户 首月关怀", "1:1")]
        html = await (await s.client.get(f"/sidebar/customer/{zhaomin}")).text()
        # An untitled text is named by its first words as she will read them; a mini program by its title.
        assert f"<time>{day1}</time> 赵敏您好，我是张伟。" in html and f"<time>{day7}</time> 手机银行常用功能" in html

        # The planner sends day 1 at its time: it is no longer upcoming.
        await s.run_until(NEW_ADDED + timedelta(days=1, hours=1, minutes=5))
        async with s.runtime.sessions() as db:
            sent = (await db.scalars(select(SopSend.material).where(SopSend.target == zhaomin))).all()
        assert list(sent) == ["new-contact-day1"]
        await sign_in(s, "zhangwei")  # a day later: the toolbar signs in again
        assert [u[1] for u in await upcoming(s, zhaomin)] == ["new-contact-day7"]

        # The opt-out tag stops every SOP message, so nothing is upcoming.
        async with s.runtime.sessions() as db, db.begin():
            db.add_all([TagGroup(group_id="grp-pref", name="偏好", order=0),
                        Tag(tag_id="tag-dnd", group_id="grp-pref", name="免打扰", order=0)])
            await db.flush()
            db.add(FollowTag(userid="zhangwei", external_userid=zhaomin, tag_id="tag-dnd", added_at=s.clock.now()))
        assert await upcoming(s, zhaomin) == []


GROUP_CALENDAR = f"""\
calendar: sidebar-group-calendar
name: 代发群运营
group_type: payroll
steps:
  - {{day: {GROUP_DAYS[0]}, at: "12:10", send: s-weekly}}
  - {{day: {GROUP_DAYS[1]}, at: "12:10", send: s-weekly, to: members}}
  - {{day: {GROUP_DAYS[1]}, at: "09:00", task: s-manager-only}}
  - {{day: {GROUP_DAYS[1] + 20}, at: "12:10", send: s-weekly}}
"""


async def test_the_group_panel_shows_the_groups_operating_calendar(db_url: str, tmp_path: Path) -> None:
    async with sidebar_stack(db_url, tmp_path, calendars={"sidebar-group-calendar": GROUP_CALENDAR}) as s:
        demo = await seed(s)
        await sign_in(s, "zhangwei")
        resp = await s.client.get(f"/sidebar/data/group/{demo.payroll_group}")
        assert resp.status == 200, await resp.text()
        body: dict[str, Any] = json.loads(await resp.text())
        # The group was created on the demo's day (ADDED); the post, the owner's card (earlier
        # that day) and the 1:1 step to members in the next 14 days; day +20 is beyond them.
        assert [(u["at"], u["material"], u["sop"], u["via"]) for u in body["calendar"]] == [
            (at(ADDED + timedelta(days=GROUP_DAYS[0]), 12, 10), "s-weekly", "代发群运营", "代发工资群"),
            (at(ADDED + timedelta(days=GROUP_DAYS[1]), 9, 0), "s-manager-only", "代发群运营", "任务"),
            (at(ADDED + timedelta(days=GROUP_DAYS[1]), 12, 10), "s-weekly", "代发群运营", "群成员")]
        html = await (await s.client.get(f"/sidebar/group/{demo.payroll_group}")).text()
        assert 'id="group-calendar"' in html
        assert f"<time>{at(ADDED + timedelta(days=GROUP_DAYS[1]), 9, 0)}</time>" in html
