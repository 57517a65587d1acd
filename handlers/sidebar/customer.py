"""The 1:1 chat's panels, as data: who the customer is, what is open, what happened, what to say.

One read transaction gathers everything (the toolbar loads in one round trip); the HTML panels
and the JSON behind them are two renderings of :class:`CustomerPanels`. The CRM's sensitive
figures stay here: AUM leaves only as its band (``handlers.crm.api.aum_band``, the tag map's ``crm.aum`` bands).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, tzinfo
from typing import Any

from sqlalchemy import JSON, CompoundSelect, Select, String, bindparam, cast, literal_column, null, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.contacts.api import Customer, Member
from handlers.crm.api import Binding, aum_band
from handlers.groups.api import GroupChat
from handlers.radar.api import LinkMaker
from handlers.sidebar.access import CustomerAccess
from handlers.sidebar.reading import CustomerRead
from handlers.sidebar.say import Offer, Offers
from handlers.sidebar.tagedit import TagEditor, editor
from handlers.sidebar.texts import ADD_WAYS, BUTTON_LABELS, STATUS_LABELS, timeline_line
from handlers.sidebar.upcoming import Upcoming, upcoming_sends
from handlers.sop.api import PRESSABLE, SopSend, SopTask, script_of
from handlers.tags.api import FollowTag, Tag, TagGroup
from handlers.timeline.api import Timeline
from scrm.playbook import Playbook, date_variables

# Keys of timeline details that name members (their names are looked up for the lines).
MEMBER_KEYS = ("user_id", "manager", "from", "to")


@dataclass(frozen=True)
class Who:
    name: str
    remark: str
    tier: str
    segment: str
    products: list[str]
    aum_band: str
    tags: list[str]
    since: str  # the relation's start, the bank's local date
    channel: str
    managers: list[str]


@dataclass(frozen=True)
class OpenTask:
    task_id: str
    title: str
    text: str
    day: str
    status: str
    status_label: str
    manager: str
    buttons: list[dict[str, str]]


@dataclass(frozen=True)
class Happened:
    at: str  # local "MM-DD HH:MM"
    line: str


@dataclass(frozen=True)
class Consent:
    """What the customer said of one category of marketing (``answered`` False: never asked, so
    ``granted`` is the compliance team's default)."""

    category: str
    label: str
    granted: bool
    answered: bool


@dataclass(frozen=True)
class CustomerPanels:
    external_userid: str
    who: Who
    tag_editor: TagEditor
    tasks: list[OpenTask]
    upcoming: list[Upcoming]
    history: list[Happened]
    offers: list[Offer]
    consent: list[Consent] = field(default_factory=list)


def _local(at: datetime, tz: tzinfo) -> datetime:
    return at.astimezone(tz)


def _label(playbook: Playbook, attribute: str, value: object) -> str:
    """A CRM value as the tag map names it (``crm.segment`` elderly → 银发), else as given."""
    for spec in playbook.tag_groups.values():
        if spec.source == f"crm.{attribute}" and spec.map:
            return spec.map.get(str(value), str(value))
    return str(value)


def _products(value: object) -> list[str]:
    if isinstance(value, list):
        return [str(v) for v in value]
    return [p for p in str(value or "").split("|") if p]


async def crm_id_of(db: AsyncSession, customer: Customer | None, external_userid: str) -> str | None:
    """The customer's CRM id: its own, else a binding's."""
    crm_id = customer.crm_id if customer is not None else None
    if not crm_id:
        crm_id = await db.scalar(select(Binding.crm_id).where(Binding.external_userid == external_userid)
                                 .order_by(Binding.bound_at.desc()).limit(1))
    return crm_id or None


async def tag_names(db: AsyncSession, managers: Sequence[str], external_userid: str) -> list[str]:
    """``group/tag`` of the live corp tags the relations carry, in WeCom's group and tag order."""
    rows = await db.execute(
        select(TagGroup.name, Tag.name).select_from(FollowTag)
        .join(Tag, Tag.tag_id == FollowTag.tag_id).join(TagGroup, TagGroup.group_id == Tag.group_id)
        .where(FollowTag.external_userid == external_userid, FollowTag.userid.in_(list(managers)),
               Tag.deleted.is_(False), TagGroup.deleted.is_(False))
        .order_by(TagGroup.order.desc(), Tag.order.desc(), Tag.name))
    return list(dict.fromkeys(f"{group}/{tag}" for group, tag in rows.all()))


# Statements built once (see handlers.sidebar.reading: building them cost more than running them).
_EXT = bindparam("ext", type_=String)
_OPEN_TASKS = (select(SopTask).where(SopTask.target == _EXT, SopTask.userid.in_(bindparam("managers", expanding=True)),
                                     SopTask.status.in_(PRESSABLE))
               .order_by(SopTask.day, SopTask.created_at))


async def open_tasks(db: AsyncSession, access: CustomerAccess, external_userid: str,
                     names: Mapping[str, str]) -> list[tuple[SopTask, OpenTask]]:
    rows = await db.scalars(_OPEN_TASKS, {"ext": external_userid, "managers": list(access.managers)})
    return [(t, task_view(t, names)) for t in rows.all()]


def task_view(t: SopTask, names: Mapping[str, str]) -> OpenTask:
    buttons = (t.detail or {}).get("buttons") or list(BUTTON_LABELS)
    return OpenTask(t.task_id, t.title, t.text, t.day.isoformat(), t.status, STATUS_LABELS.get(t.status, t.status),
                    names.get(t.userid, t.userid),
                    [{"key": b, "label": BUTTON_LABELS[b]} for b in buttons if b in BUTTON_LABELS]
                    if t.status in PRESSABLE else [])


@functools.cache
def _history_statement(limit: int) -> Select[Any]:
    """The customer's newest timeline entries (``limit`` × 3) and SOP sends (``limit``), in one statement."""
    entries = (select(literal_column("0").label("src"), Timeline.id, Timeline.at, Timeline.kind, Timeline.detail,
                      cast(null(), String).label("material"))
               .where(Timeline.subject_type == "customer", Timeline.subject_id == _EXT)
               .order_by(Timeline.at.desc()).limit(limit * 3).subquery())
    sends = (select(literal_column("1").label("src"), SopSend.id, SopSend.created_at.label("at"),
                    cast(null(), String).label("kind"), cast(null(), JSON).label("detail"), SopSend.material)
             .where(SopSend.target == _EXT, SopSend.target_type == "customer")
             .order_by(SopSend.created_at.desc()).limit(limit).subquery())
    both = union_all(select(entries), select(sends)).subquery()
    return (select(both.c.src, both.c.at, both.c.kind, both.c.detail, both.c.material)
            .order_by(both.c.src, both.c.at.desc(), both.c.id.desc()))


# Members' names (their userid when empty), then groups' names.
_NAMES: CompoundSelect[Any] = union_all(
    select(literal_column("0").label("src"), Member.userid.label("id"), Member.name)
    .where(Member.userid.in_(bindparam("members", expanding=True))),
    select(literal_column("1").label("src"), GroupChat.chat_id.label("id"), GroupChat.name)
    .where(GroupChat.chat_id.in_(bindparam("chats", expanding=True))))


async def history(db: AsyncSession, playbook: Playbook, external_userid: str, tz: tzinfo,
                  limit: int) -> list[Happened]:
    """The newest things that happened to the customer, for people: the timeline's entries
    (opens, group joins, relation changes, transfers, sidebar sends) and the bank's SOP sends,
    read in one statement; then the members and groups they name, in one more."""
    rows = (await db.execute(_history_statement(limit), {"ext": external_userid})).all()
    found = [(at, kind, detail or {}) for src, at, kind, detail, _m in rows if src == 0]
    materials = [(at, str(material)) for src, at, _k, _d, material in rows if src == 1]
    names: dict[str, str] = {f"material:{m.id}": m.title or m.id for m in playbook.materials.values()}
    names.update(await _names(db, {str(d.get(k, "")) for _a, _k, d in found for k in MEMBER_KEYS} - {""},
                              {str(d.get("chat_id")) for _a, _k, d in found if d.get("chat_id")}))
    lines = [(at, timeline_line(kind, detail, names)) for at, kind, detail in found]
    lines += [(at, f"银行推送：{names.get('material:' + m, m)}") for at, m in materials]
    lines = sorted((x for x in lines if x[1]), key=lambda x: x[0], reverse=True)[:limit]
    return [Happened(_local(at, tz).strftime("%m-%d %H:%M"), line) for at, line in lines]


async def _names(db: AsyncSession, members: set[str], chats: set[str]) -> dict[str, str]:
    if not members and not chats:
        return {}
    rows = (await db.execute(_NAMES, {"members": sorted(members), "chats": sorted(chats)})).all()
    names = {ident: name or ident for src, ident, name in rows if src == 0}
    names.update({ident: name for src, ident, name in rows if src == 1})
    return names


async def gather(db: AsyncSession, playbook: Playbook, access: CustomerAccess, read: CustomerRead, *,
                 viewer_name: str, links: LinkMaker, today: date, now: datetime, tz: tzinfo, history_items: int,
                 cover_base: str = "") -> CustomerPanels:
    """The panels of the customer ``read`` (:func:`handlers.sidebar.reading.read_customer`) as
    ``access`` lets the viewer see them."""
    external_userid = read.external_userid
    attrs = read.attributes or {}
    relation = read.relation(access.managers[0])
    names = read.manager_names(access.managers)
    tags = read.tag_names(access.managers)
    channel = playbook.channels.get(relation.state)
    name = str(attrs.get("name") or read.name or relation.remark or "客户")
    who = Who(name=name, remark=relation.remark,
              tier=_label(playbook, "tier", attrs["tier"]) if "tier" in attrs else "",
              segment=_label(playbook, "segment", attrs["segment"]) if "segment" in attrs else "",
              products=[_label(playbook, "products", p) for p in _products(attrs.get("products"))],
              aum_band=aum_band(playbook.tag_groups, attrs.get("aum")), tags=tags,
              since=_local(relation.created_at, tz).date().isoformat(),
              channel=channel.name if channel is not None else ADD_WAYS.get(relation.add_way, "未知来源"),
              managers=[names.get(u, u) for u in access.managers])
    tasks = await open_tasks(db, access, external_userid, names)
    # The rendering context: the customer as the SOPs name them (CRM name first), the sender.
    context = {**date_variables(today), **{f"crm.{k}": str(v) for k, v in attrs.items()
                                          if isinstance(v, str | int | float) and not isinstance(v, bool)},
               "customer.name": name, "customer.remark": relation.remark, "manager.name": viewer_name}
    offers = Offers(playbook, links, access.viewer, "private", today, context, customer=external_userid,
                    cover_base=cover_base)
    scripted = [o for o in (_script(playbook, offers, t) for t, _ in tasks) if o is not None]
    # The task's script goes with its task (its SOP step chose the customer); the library only
    # what the customer's tags suit.
    said = scripted + offers.library(tags, audience=read.customer_tags())
    editable = editor(playbook, access.managers[0], read.relation_tags(access.managers[0]))
    return CustomerPanels(external_userid, who, editable, [v for _, v in tasks],
                          await upcoming_sends(db, playbook, read.planner_target(), now, tz, context=context),
                          await history(db, playbook, external_userid, tz, history_items), said)


def _script(playbook: Playbook, offers: Offers, task: SopTask) -> Offer | None:
    """The suggested script of a task: its path step's ``script:`` or its reminder's."""
    material = playbook.materials.get(script_of(task, playbook) or "")
    return offers.offer(material, task=task.task_id) if material is not None else None
