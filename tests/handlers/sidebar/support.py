"""The sidebar on the sandbox stack: the shipped playbook plus a few materials whose compliance
the tests vary, the demo bank's customers mirrored for their managers (CRM record, tags, the
relation), and signing a member in the way WeCom's webview does (OAuth, then the toolbar page).

Every figure the tests expect comes from what ``seed`` writes here, never from the code under test.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
from sqlalchemy import update

from handlers.contacts.models import Customer, Follow, Member
from handlers.crm.api import CrmCustomer, CrmKeyEvent
from handlers.groups.models import GroupChat, GroupMember
from handlers.tags.api import FollowTag, Tag, TagGroup
from scrm.sandbox.records import Card
from tests.support.playbooks import APPROVED, write_shipped_playbook
from tests.support.stack import Stack, stack
from tests.support.web import back_from_wecom

SH = ZoneInfo("Asia/Shanghai")
START = datetime(2026, 11, 2, 10, 0, tzinfo=SH)  # a Monday, 10:00 (outside quiet hours)
ADDED = datetime(2026, 6, 1, 2, 0, tzinfo=UTC)  # the relations began on 2026-06-01 (Shanghai 10:00)

#: The materials whose fate the tests check (today is 2026-11-02).
MATERIALS = f"""\
- id: s-weekly
  type: link
  title: 本周理财精选
  channels: [group, private]
  text: "您好，我是{{manager.name}}，本周理财精选请查收。"
  link: {{title: 本周理财精选, desc: 稳健型产品一览, url: "https://wealth.example.com/weekly"}}
  interest_tags: [兴趣/理财]
  {APPROVED}
- id: s-hours
  type: text
  title: 营业时间
  channels: [private]
  text: "{{customer.name}}，本周营业时间不变，有事随时找我。"
  {APPROVED}
- id: s-group-hello
  type: text
  title: 群里问好
  channels: [group]
  text: "欢迎来到{{group.name}}，我是{{manager.name}}。"
  {APPROVED}
- id: s-expired
  type: text
  title: 过期活动
  channels: [private, group]
  text: 十月活动最后一天。
  valid_until: 2026-10-31
  {APPROVED}
- id: s-unapproved
  type: text
  title: 未审批话术
  channels: [private, group]
  text: 未经审批的说法。
- id: s-not-yet
  type: text
  title: 下月活动
  channels: [private, group]
  text: 下月活动预告。
  approved: {{by: 合规部-测试, at: 2026-12-01}}
- id: s-manager-only
  type: text
  title: 内部提示
  channels: [manager]
  text: 仅供客户经理参考。
  {APPROVED}
- id: s-poster
  type: image
  title: 理财节海报
  image: {{path: covers/help.png}}
  {APPROVED}
- id: s-rates
  type: file
  title: 存款利率表
  file: {{path: files/rates.pdf}}
  {APPROVED}
- id: s-mini
  type: miniprogram
  title: 预约取现
  miniprogram:
    title: 预约取现
    appid: wx5f3a9c7b1d4e6a82
    page: pages/cash/book.html
    cover: covers/checkin.png
  {APPROVED}
- id: s-old-poster
  type: image
  title: 十月海报
  image: {{path: covers/topup.png}}
  valid_until: 2026-10-31
  {APPROVED}
"""
#: Where the image, file and mini program cover above come from (the shipped materials/ copy).
POSTER, RATES, MINI_COVER = "covers/help.png", "files/rates.pdf", "covers/checkin.png"

#: What the CRM holds about 王芳 (AUM must never leave the server as a figure).
WANGFANG_CRM: dict[str, Any] = {"name": "王芳", "tier": "V3", "segment": "payroll", "products": ["payroll", "wealth"],
                                "aum": 1234567.89}
AUM_FIGURES = ("1234567", "1,234,567", "123.45")


@dataclass(frozen=True)
class Demo:
    wangfang: str  # zhangwei's customer (team lead wangqiang)
    sunli: str  # lina's customer
    payroll_group: str  # 代发工资群, owned by zhangwei


@contextlib.asynccontextmanager
async def sidebar_stack(db_url: str, root: Path, *, port: int | None = None, paths: dict[str, str] | None = None,
                        calendars: dict[str, str] | None = None,
                        sections: dict[str, Any] | None = None, more_materials: str = "") -> AsyncIterator[Stack]:
    """``paths`` / ``calendars``: SOPs to plan with (none by default, so nothing is sent on its own);
    ``more_materials``: materials a test adds to :data:`MATERIALS`."""
    # Plain HTTP on loopback, as the test client speaks it (an https address makes the cookie
    # Secure, which the client then never sends over http).
    more: dict[str, Any] = {"server": {"public_url": f"http://127.0.0.1:{port or 8080}"}, **(sections or {})}
    playbook = write_shipped_playbook(root, materials=MATERIALS + more_materials, paths=paths, calendars=calendars)
    async with stack(db_url, root, start=START, playbook=playbook, sections=more, port=port) as s:
        yield s


async def seed(s: Stack) -> Demo:
    """Mirror the demo bank as the service would hold it after its first sync."""
    ids = s.ids
    wangfang, sunli, liuyang = ids.customers["王芳"], ids.customers["孙丽"], ids.customers["刘洋"]
    chat = ids.groups["代发工资群"]
    async with s.runtime.sessions() as db, db.begin():
        await db.execute(update(Member).where(Member.userid.in_(["zhangwei", "lina"])).values(team_lead="wangqiang"))
        db.add_all([
            Customer(external_userid=wangfang, name="王芳", crm_id="crm-wangfang", updated_at=ADDED),
            Customer(external_userid=sunli, name="孙丽", updated_at=ADDED),
            Customer(external_userid=liuyang, name="刘洋", updated_at=ADDED),
            CrmCustomer(crm_id="crm-wangfang", attributes=WANGFANG_CRM, updated_at=ADDED),
            Follow(userid="zhangwei", external_userid=wangfang, remark="王芳-代发", state="payroll-onboarding",
                   add_way=1, created_at=ADDED),
            Follow(userid="lina", external_userid=sunli, remark="孙丽-退休", add_way=1, created_at=ADDED),
            # A relation that ended: its former manager no longer sees the customer.
            Follow(userid="lina", external_userid=liuyang, add_way=1, created_at=ADDED, status="lost"),
            Follow(userid="zhangwei", external_userid=liuyang, add_way=1, created_at=ADDED),
            TagGroup(group_id=ids.tag_groups["客户等级"], name="客户等级", order=3, owner="crm"),
            TagGroup(group_id=ids.tag_groups["兴趣"], name="兴趣", order=1),
            Tag(tag_id=ids.tags["客户等级/V1"], group_id=ids.tag_groups["客户等级"], name="V1", order=6),
            Tag(tag_id=ids.tags["兴趣/理财"], group_id=ids.tag_groups["兴趣"], name="理财", order=3),
            Tag(tag_id=ids.tags["兴趣/健康"], group_id=ids.tag_groups["兴趣"], name="健康", order=2),
            Tag(tag_id=ids.tags["兴趣/旅游"], group_id=ids.tag_groups["兴趣"], name="旅游", order=1, deleted=True),
            FollowTag(userid="zhangwei", external_userid=wangfang, tag_id=ids.tags["客户等级/V1"], added_at=ADDED),
            FollowTag(userid="zhangwei", external_userid=wangfang, tag_id=ids.tags["兴趣/理财"], added_at=ADDED),
            FollowTag(userid="zhangwei", external_userid=wangfang, tag_id=ids.tags["兴趣/旅游"], added_at=ADDED),
        ])
        await db.flush()
        db.add_all([
            GroupChat(chat_id=chat, name="代发工资群", owner="zhangwei", group_type="payroll", created_at=ADDED,
                      updated_at=ADDED),
            GroupMember(chat_id=chat, member_id="zhangwei", type=1, joined_at=ADDED),
            GroupMember(chat_id=chat, member_id=wangfang, type=2, joined_at=datetime(2026, 10, 30, 2, 0, tzinfo=UTC)),
            GroupMember(chat_id=chat, member_id=sunli, type=2, joined_at=ADDED,
                        left_at=datetime(2026, 11, 1, 4, 30, tzinfo=UTC)),
        ])
    return Demo(wangfang, sunli, chat)


async def transfer_card(s: Stack, crm_id: str = "crm-wangfang", event_id: str = "t1") -> Card:
    """A large transfer from the CRM: the SOP engine's reminder card reaches zhangwei."""
    async with s.runtime.sessions() as db, db.begin():
        event = CrmKeyEvent(at=s.clock.now(), event_id=event_id, crm_id=crm_id, event_kind="large_transfer",
                            occurred_at=s.clock.now(), details={"amount": 800000.0})
        await s.runtime.inbox.add_internal(db, event, f"crm:{event_id}")
    await s.step()
    (card,) = [c for c in s.cards("zhangwei") if "转出" in c.card["sub_title_text"]]
    return card


async def sign_in(s: Stack, userid: str) -> aiohttp.ClientResponse:
    """The toolbar opened inside WeCom: the page sends the browser to WeCom's OAuth page (the
    sandbox's, told who is looking), which comes back with a code."""
    s.client.session.cookie_jar.clear()  # another member's WeCom app: no session yet
    start = await s.client.get("/sidebar/", allow_redirects=False)
    assert start.status == 302, await start.text()
    authorize = start.headers["Location"]
    assert authorize.endswith("#wechat_redirect"), authorize
    back = await back_from_wecom(authorize.split("#")[0] + f"&sandbox_viewer={userid}")
    return await s.client.get(back, allow_redirects=False)


async def csrf_of(s: Stack) -> str:
    """The signed-in session's CSRF token, as the toolbar page carries it."""
    page = await (await s.client.get("/sidebar/")).text()
    marker = 'data-csrf="'
    start = page.index(marker) + len(marker)
    return page[start:page.index('"', start)]
