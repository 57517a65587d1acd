"""A customer group's panels, as data: its type, size, who joined or left lately, its operating
calendar for the next two weeks, and the materials allowed in groups (rendered with the group's
and the manager's names)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from typing import Any

from sqlalchemy import CompoundSelect, String, bindparam, func, literal_column, or_, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.contacts.api import Customer, Member
from handlers.crm.api import CrmGroup
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


# Statements built once (see handlers.sidebar.reading).
_CHAT = bindparam("chat", type_=String)
_SINCE = bindparam("since", type_=GroupMember.joined_at.type)
_SIZE_AND_PAYDAY = select(
    select(func.count()).select_from(GroupMember)
    .where(GroupMember.chat_id == _CHAT, GroupMember.left_at.is_(None)).scalar_subquery(),
    select(CrmGroup.payday).where(CrmGroup.chat_id == _CHAT).scalar_subquery())
_CHANGED = (select(GroupMember.member_id, GroupMember.joined_at, GroupMember.left_at)
            .where(GroupMember.chat_id == _CHAT, or_(GroupMember.joined_at >= _SINCE, GroupMember.left_at >= _SINCE)))
# Customers' names, then members' (a member's name wins, as it did).
_NAMES: CompoundSelect[Any] = union_all(
    select(literal_column("0").label("src"), Customer.external_userid.label("id"), Customer.name)
    .where(Customer.external_userid.in_(bindparam("ids", expanding=True))),
    select(literal_column("1").label("src"), Member.userid.label("id"), Member.name)
    .where(Member.userid.in_(bindparam("ids", expanding=True))))


async def _changes(db: AsyncSession, chat_id: str, since: datetime, tz: tzinfo) -> list[Change]:
    rows = (await db.execute(_CHANGED, {"chat": chat_id, "since": since})).all()
    ids = sorted({member_id for member_id, _j, _l in rows})
    found = (await db.execute(_NAMES, {"ids": ids})).all() if ids else []
    names = {i: n for src, i, n in found if src == 0}
    names.update({i: n for src, i, n in found if src == 1})
    events = [(joined, who, True) for who, joined, _l in rows if joined is not None and joined >= since]
    events += [(left, who, False) for who, _j, left in rows if left is not None and left >= since]
    events.sort(key=lambda e: e[0], reverse=True)
    return [Change(at.astimezone(tz).strftime("%m-%d %H:%M"), names.get(who) or "客户", joined)
            for at, who, joined in events[:RECENT_ITEMS]]


async def gather(db: AsyncSession, playbook: Playbook, chat: GroupChat, *, viewer: str, viewer_name: str,
                 links: LinkMaker, today: date, now: datetime, tz: tzinfo, cover_base: str = "") -> GroupPanels:
    size, payday = (await db.execute(_SIZE_AND_PAYDAY, {"chat": chat.chat_id})).one()
    members = int(size or 0)
    gtype = playbook.group_types.get(chat.group_type or "")
    context = {**date_variables(today), "group.name": chat.name, "manager.name": viewer_name}
    if gtype is not None and gtype.payday is not None:
        context["group.payday"] = str(gtype.payday)
    offers = Offers(playbook, links, viewer, "group", today, context, occurrence=f"sidebar:group:{chat.chat_id}",
                    cover_base=cover_base)
    return GroupPanels(chat.chat_id, chat.name, gtype.name if gtype is not None else "未分类", members,
                       await _changes(db, chat.chat_id, now - RECENT, tz),
                       group_calendar(playbook, chat, payday, now, tz, context=context), offers.library())
