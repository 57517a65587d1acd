"""A customer group's panels, as data: its type, size, who joined or left lately, its operating
calendar for the next two weeks, and the materials allowed in groups (rendered with the group's
and the manager's names)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.contacts.api import Customer, Member
from handlers.groups.api import GroupChat, GroupMember
from handlers.radar.api import LinkMaker
from handlers.sidebar.say import Offer, Offers
from handlers.sidebar.upcoming import Upcoming, group_calendar
from scrm.playbook import Playbook, date_variables

RECENT = timedelta(days=14)
RECENT_ITEMS = 10


@dataclass(frozen=True)
class Change:
    at: str  # local "MM-DD HH:MM"
    name: str
    joined: bool


@dataclass(frozen=True)
class GroupPanels:
    chat_id: str
    name: str
    group_type: str
    members: int
    changes: list[Change]
    calendar: list[Upcoming]
    offers: list[Offer]


async def _changes(db: AsyncSession, chat_id: str, since: datetime, tz: tzinfo) -> list[Change]:
    rows = (await db.scalars(select(GroupMember).where(
        GroupMember.chat_id == chat_id, or_(GroupMember.joined_at >= since, GroupMember.left_at >= since)))).all()
    ids = sorted({r.member_id for r in rows})
    names = {e: n for e, n in (await db.execute(select(Customer.external_userid, Customer.name)
                                                .where(Customer.external_userid.in_(ids)))).all()} if ids else {}
    if ids:
        names.update({u: n for u, n in (await db.execute(select(Member.userid, Member.name)
                                                         .where(Member.userid.in_(ids)))).all()})
    events = [(r.joined_at, r.member_id, True) for r in rows if r.joined_at is not None and r.joined_at >= since]
    events += [(r.left_at, r.member_id, False) for r in rows if r.left_at is not None and r.left_at >= since]
    events.sort(key=lambda e: e[0], reverse=True)
    return [Change(at.astimezone(tz).strftime("%m-%d %H:%M"), names.get(who) or "客户", joined)
            for at, who, joined in events[:RECENT_ITEMS]]


async def gather(db: AsyncSession, playbook: Playbook, chat: GroupChat, *, viewer: str, viewer_name: str,
                 links: LinkMaker, today: date, now: datetime, tz: tzinfo, cover_base: str = "") -> GroupPanels:
    members = int(await db.scalar(select(func.count()).select_from(GroupMember).where(
        GroupMember.chat_id == chat.chat_id, GroupMember.left_at.is_(None))) or 0)
    gtype = playbook.group_types.get(chat.group_type or "")
    context = {**date_variables(today), "group.name": chat.name, "manager.name": viewer_name}
    if gtype is not None and gtype.payday is not None:
        context["group.payday"] = str(gtype.payday)
    offers = Offers(playbook, links, viewer, "group", today, context, occurrence=f"sidebar:group:{chat.chat_id}",
                    cover_base=cover_base)
    return GroupPanels(chat.chat_id, chat.name, gtype.name if gtype is not None else "未分类", members,
                       await _changes(db, chat.chat_id, now - RECENT, tz),
                       await group_calendar(db, playbook, chat, now, tz, context=context), offers.library())
