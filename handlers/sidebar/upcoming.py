"""The SOP sends coming to one customer in the next days, for the "What's open" panel.

Worked out with the SOP planner's own rules (``handlers.sop.api``: the customer as the planner
reads them, the path anchors, branch choice, send keys) and the playbook's date arithmetic
(``path_occurrences``, ``calendar_occurrences``), for this one customer instead of every
customer in one slot, so a panel load costs a few small queries:

* path steps that send 1:1 (the customer's tags and CRM condition match, the branch chosen on
  today's CRM values);
* calendar steps of the customer groups they are in: the group's posts, and ``to: members``
  steps that reach them 1:1 from the group's owner.

Left out: tasks (not sends), what the opt-out tag stops, what is past (sent, or skipped: the
planner runs each slot on time), and a material that will not be sendable on its day. Caps
and quiet hours are judged on the day itself, so a listed send may still be held back then;
the list says what the playbook means to send, not a promise.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import String, bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.crm.api import CrmGroup
from handlers.groups.api import GroupChat, GroupMember
from handlers.sidebar.say import material_label
from handlers.sop.api import HOLIDAY_LOOKBACK, CustomerTarget, choose_branch, customer_anchor
from scrm.playbook import EvaluationError, Occurrence, Playbook, calendar_occurrences, path_occurrences

HORIZON_DAYS = 14
CUSTOMER_MEMBER = 2  # group_member.type of an external contact


@dataclass(frozen=True)
class Upcoming:
    at: str  # local "MM-DD HH:MM"
    material: str
    title: str
    sop: str  # the SOP's name (path or calendar)
    via: str  # "1:1" or the group's name
    note: str  # e.g. the holiday move ("moved from 10-01 (国庆节)")


@dataclass(frozen=True)
class _Found:
    at: datetime
    step: str
    material: str
    sop: str
    via: str
    note: str


def _in_window(occ: Occurrence, now: datetime, end: date) -> bool:
    return occ.at >= now and occ.at.date() <= end


def _paths(pb: Playbook, c: CustomerTarget, now: datetime, end: date, tz: ZoneInfo) -> list[_Found]:
    out: list[_Found] = []
    values = c.values()
    start = now.astimezone(tz).date() - HOLIDAY_LOOKBACK  # a step moved past a holiday into the window
    for path in pb.paths.values():
        if not path.active or not path.when.matches(c.tags):
            continue
        if path.when.condition is not None:
            try:
                if not path.when.condition.evaluate(values, c.tags):
                    continue
            except EvaluationError:
                continue
        anchor = customer_anchor(c, path.anchor, tz)
        manager = c.manager
        if anchor is None or manager is None:
            continue
        steps = {s.key: s for s in path.steps}
        for occ in path_occurrences(pb, path, {path.anchor: anchor}, start, end):
            action = choose_branch(steps[occ.step], values, c.tags) if _in_window(occ, now, end) else None
            if action is not None and action.send:
                out.append(_Found(occ.at, occ.step, action.send, path.name, "1:1", occ.note))
    return out


def _group_occurrences(pb: Playbook, group_type: str | None, created_at: datetime | None, payday: int | None,
                       now: datetime, end: date, tz: ZoneInfo) -> list[tuple[Occurrence, Any, str]]:
    """The group's calendar slots in the window: (slot, its entry, the calendar's name)."""
    if created_at is None:  # no creation day, no calendar (the planner skips such groups too)
        return []
    start = now.astimezone(tz).date() - HOLIDAY_LOOKBACK
    out: list[tuple[Occurrence, Any, str]] = []
    for cal in pb.calendars.values():
        if not cal.active or cal.group_type != group_type:
            continue
        entries = {**{s.key: s for s in cal.steps}, **{r.key: r for r in cal.recurring}}
        created = created_at.astimezone(tz).date()
        for occ in calendar_occurrences(pb, cal, created, start, end, payday=payday):
            if _in_window(occ, now, end):
                out.append((occ, entries[occ.step], cal.name or cal.calendar))
    return out


# The active groups a customer is in (built once: see handlers.sidebar.reading).
_CUSTOMER_GROUPS = (select(GroupChat.name, GroupChat.owner, GroupChat.group_type, GroupChat.created_at, CrmGroup.payday)
                    .join(GroupMember, GroupMember.chat_id == GroupChat.chat_id)
                    .outerjoin(CrmGroup, CrmGroup.chat_id == GroupChat.chat_id)
                    .where(GroupMember.member_id == bindparam("ext", type_=String),
                           GroupMember.type == CUSTOMER_MEMBER, GroupMember.left_at.is_(None),
                           GroupChat.status == "active")
                    .order_by(GroupChat.chat_id))


async def _calendars(db: AsyncSession, pb: Playbook, c: CustomerTarget, now: datetime, end: date,
                     tz: ZoneInfo) -> list[_Found]:
    rows = (await db.execute(_CUSTOMER_GROUPS, {"ext": c.external_userid})).all()
    followed_by = {f.userid for f in c.follows}
    out: list[_Found] = []
    for name, owner, group_type, created_at, payday in rows:
        for occ, entry, sop in _group_occurrences(pb, group_type, created_at, payday, now, end, tz):
            if entry.task or not entry.send:
                continue
            if entry.to == "members":  # 1:1 from the owner, to members who are the owner's contacts
                if owner not in followed_by or (entry.tags is not None and not entry.tags.matches(c.tags)):
                    continue
                out.append(_Found(occ.at, occ.step, entry.send, sop, "1:1", occ.note))
            else:
                out.append(_Found(occ.at, occ.step, entry.send, sop, name or "客户群", occ.note))
    return out


def group_calendar(pb: Playbook, chat: GroupChat, payday: int | None, now: datetime, tz: tzinfo, *,
                   context: Mapping[str, str], days: int = HORIZON_DAYS) -> list[Upcoming]:
    """The group's operating calendar for the next ``days`` (``payday``: the CRM's for this
    group, if any): its posts (``via`` the group), the 1:1 sends to its members (``群成员``) and
    the owner's task cards (``任务``), each with the material's title; a slot whose material
    will not be sendable on its day is left out."""
    zone = ZoneInfo(pb.policy.timezone)
    end = now.astimezone(zone).date() + timedelta(days=days - 1)
    out: list[Upcoming] = []
    slots = _group_occurrences(pb, chat.group_type, chat.created_at, payday, now, end, zone)
    for occ, entry, sop in sorted(slots, key=lambda s: (s[0].at, s[2], s[0].step)):
        material = pb.materials.get(entry.send or entry.task or "")
        if material is None or material.compliance_problem(occ.at.date()) is not None:
            continue  # the planner will skip it on the day
        via = "任务" if entry.task else "群成员" if entry.to == "members" else chat.name or "客户群"
        out.append(Upcoming(occ.at.astimezone(tz).strftime("%m-%d %H:%M"), material.id,
                            material_label(material, context, pb.policy), sop, via, occ.note))
    return out


async def upcoming_sends(db: AsyncSession, pb: Playbook, c: CustomerTarget | None, now: datetime, tz: tzinfo, *,
                         context: Mapping[str, str], days: int = HORIZON_DAYS) -> list[Upcoming]:
    """What the SOPs will send the customer ``c`` (as the planner reads them; None: no customer
    row) from ``now`` to the end of the ``days``-th day (``context``: the customer's template
    values, for labels of untitled texts)."""
    zone = ZoneInfo(pb.policy.timezone)
    if c is None or not c.follows or pb.policy.opt_out_tag in c.tags:
        return []
    end = now.astimezone(zone).date() + timedelta(days=days - 1)
    found = _paths(pb, c, now, end, zone) + await _calendars(db, pb, c, now, end, zone)
    out: list[Upcoming] = []
    for f in sorted(found, key=lambda f: (f.at, f.sop, f.step)):
        material = pb.materials.get(f.material)
        day = f.at.date()
        if material is None or material.compliance_problem(day) is not None:
            continue  # the planner will skip it on the day
        label = material_label(material, context, pb.policy)
        out.append(Upcoming(f.at.astimezone(tz).strftime("%m-%d %H:%M"), material.id, label, f.sop, f.via, f.note))
    return out
