"""The customers a console viewer may find and open: search and one customer's picture.

Scope is applied in the query: a team lead or branch head finds and opens only customers with a
relation (active or past) to a manager inside their scope, and sees only those relations (their
tags, their cards); ops admins and auditors see everyone. Every read is bounded and served by an
index, so a page stays fast with a million customers and ten million timeline rows:

* search filters (name prefix, tag, manager, CRM id) combine; results come 50 a page in
  ``(lower(name), external_userid)`` order, keyset paginated (``ix_customer_name_key``; see
  migration console_0004 for why a prefix and not pg_trgm);
* a customer's timeline comes 100 entries a page, newest first, keyset on ``(at, id)``; sends,
  opens and cards are the newest :data:`LATEST` of each.

The CRM's sensitive figures never leave: attributes are an allow-list, AUM only as its band
(:func:`handlers.crm.api.aum_band`, the sidebar's rule), timeline details only through the
named keys of :func:`describe`.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, String, and_, collate, func, literal, or_, select, tuple_, union
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.console.access import Grant
from handlers.console.scope import BadScope, ScopeRefused, resolve, under
from handlers.contacts.api import Customer, Follow, Member
from handlers.crm.api import Binding, CrmCustomer, aum_band
from handlers.radar.api import RadarClick
from handlers.sop.api import SopSend, SopTask
from handlers.tags.api import FollowTag, Tag, TagGroup
from handlers.timeline.api import Timeline
from scrm.playbook import Playbook

PAGE = 50
TIMELINE_PAGE = 100
LATEST = 50  # sends, opens, cards: the newest this many
MAX_TEXT = 64
# A WeCom external userid (and a CRM id as the bank writes them): no spaces, no markup.
ID_SHAPE = re.compile(r"[A-Za-z0-9_\-.@:]{1,128}")
# Above every character a name can hold: [p, p + TOP) is "starts with p" in byte order.
TOP = "\U0010ffff"

RELATION_STATUS = {"active": "正常", "lost": "客户已删除", "removed": "客户经理已删除", "transferred": "已转接"}
TASK_STATUS = {"open": "待处理", "snoozed": "已推迟", "done": "已完成", "not_relevant": "不适用",
               "escalated": "已升级"}
# WeCom's follow_user.add_way (how a relation began) when no channel QR code says more.
ADD_WAYS = {0: "未知来源", 1: "扫描二维码", 2: "搜索手机号", 3: "名片分享", 4: "群聊", 5: "手机通讯录",
            6: "微信联系人", 8: "第三方应用自动添加", 9: "搜索邮箱", 10: "视频号添加", 11: "日程参与人",
            12: "会议参与人", 13: "微信好友", 14: "智慧硬件专属客服", 15: "上门服务客服", 16: "获客链接",
            17: "定制开发", 18: "需求回复", 201: "内部成员共享", 202: "管理员/负责人分配"}
KIND_LABELS = {
    "external_contact.add": "添加客户经理", "external_contact.add_half": "添加客户经理（待通过）",
    "external_contact.edit": "客户经理修改了客户资料", "external_contact.del": "客户经理删除了客户",
    "external_contact.del_follow_user": "客户删除了客户经理", "external_contact.transfer_fail": "转接失败",
    "external_chat.update": "客户群变动", "radar.click": "打开链接", "sidebar.send": "聊天中发送",
    "succession.transferred": "客户转接", "welcome.failed": "欢迎语未能发出", "welcome.degraded": "欢迎语降级发送",
    "crm.event": "CRM事件", "sop.reminder": "提醒", "contact.channel_tags": "渠道标签",
}
# Timeline detail keys shown, with their labels; nothing else of a detail is ever rendered (a
# CRM event's payload carries amounts).
DETAIL_KEYS = {"user_id": "客户经理", "manager": "客户经理", "from": "原客户经理", "to": "新客户经理",
               "chat_id": "客户群", "update_detail": "变动", "material": "素材", "title": "内容", "reason": "原因",
               "kind": "类型"}
MEMBER_KEYS = ("user_id", "manager", "from", "to")
# CRM attributes the page shows (an allow-list: a record may carry anything). AUM is added as a band.
SHOWN_ATTRIBUTES = (("name", "姓名"), ("tier", "客户等级"), ("segment", "客群"), ("products", "持有产品"))


class BadSearch(ValueError):
    """Malformed input: one line for a 400."""


class NotFound(LookupError):
    """No such customer."""


@dataclass(frozen=True)
class Filters:
    q: str = ""  # a name prefix
    tag: str = ""  # a tag id, a tag name, or group/tag
    manager: str = ""  # a manager's userid
    crm_id: str = ""  # exact

    @property
    def any(self) -> bool:
        return bool(self.q or self.tag or self.manager or self.crm_id)


@dataclass(frozen=True)
class Found:
    external_userid: str
    name: str
    crm_id: str
    managers: list[str]  # "name（status）" of the relations the viewer sees


@dataclass
class SearchPage:
    rows: list[Found]
    after: str  # the cursor of the next page, "" on the last
    notice: str = ""  # why nothing can match (an unknown tag)


def filters_of(query: Mapping[str, str]) -> Filters:
    """The search form's fields, checked (:class:`BadSearch` for what no search can use)."""
    f = Filters(*(query.get(k, "").strip() for k in ("q", "tag", "manager", "crm_id")))
    for name, value in (("q", f.q), ("tag", f.tag), ("manager", f.manager), ("crm_id", f.crm_id)):
        if len(value) > MAX_TEXT * (2 if name == "crm_id" else 1):
            raise BadSearch(f"{name} is too long")
    if f.crm_id and not ID_SHAPE.fullmatch(f.crm_id):
        raise BadSearch("crm_id: letters, digits and _-.@: only")
    return f


def encode_cursor(*parts: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(parts, ensure_ascii=False).encode()).decode().rstrip("=")


def decode_cursor(token: str, n: int) -> list[Any]:
    """The parts of a cursor this module wrote (:class:`BadSearch` for anything else)."""
    try:
        parts = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (ValueError, binascii.Error):
        raise BadSearch("after/before: not a cursor of this page") from None
    if not isinstance(parts, list) or len(parts) != n or not all(isinstance(p, str | int) for p in parts):
        raise BadSearch("after/before: not a cursor of this page")
    return parts


def _c(dialect: str, expr: ColumnElement[Any]) -> ColumnElement[Any]:
    """Byte order on PostgreSQL, where the index key is ``lower(name) COLLATE "C"``; SQLite's
    default (BINARY) already is."""
    return collate(expr, "C") if dialect == "postgresql" else expr


def name_key(dialect: str) -> ColumnElement[Any]:
    return _c(dialect, func.lower(Customer.name))


async def tag_ids(db: AsyncSession, tag: str) -> list[str]:
    """The live tags ``tag`` names: an id, ``group/tag``, or a tag name in any group."""
    live = and_(Tag.deleted.is_(False), TagGroup.deleted.is_(False))
    base = select(Tag.tag_id).join(TagGroup, TagGroup.group_id == Tag.group_id).where(live)
    ids = list((await db.scalars(base.where(Tag.tag_id == tag))).all())
    if not ids and "/" in tag:
        group, _, name = tag.partition("/")
        ids = list((await db.scalars(base.where(TagGroup.name == group, Tag.name == name))).all())
    if not ids:
        ids = list((await db.scalars(base.where(Tag.name == tag))).all())
    return sorted(ids)


@dataclass(frozen=True)
class Plan:
    """How one search reads: ``scope`` the managers whose customers the viewer may see (None =
    the whole bank); ``drive`` the managers whose relations to start from (a small book: their
    follows, then those customers by key), or None to walk the customer index in order and
    check each row (the whole bank, or a book so large that a page is found in a few hundred
    rows); likewise a search by a rare tag, not by name, starts from the tag's relations. Either
    way a page reads a bounded number of rows."""

    scope: list[str] | None
    drive: list[str] | None
    tag_drives: bool = False  # a rare tag (few relations): start from its relations instead


def search_query(f: Filters, plan: Plan, dialect: str, *, tags: Sequence[str] = (),
                 after: Sequence[Any] | None = None) -> Select[Any]:
    """One page (+1 row, to know whether there is another) of the customers ``f`` finds within
    ``plan``: by name prefix in ``(lower(name), external_userid)`` order, else by external_userid;
    after the cursor ``after`` (the last row's order key)."""
    key = name_key(dialect)
    order: list[Any] = [key, Customer.external_userid] if f.q else [Customer.external_userid]
    stmt = select(Customer.external_userid, Customer.name, Customer.crm_id, key.label("key"))
    tagged = select(FollowTag.external_userid).where(FollowTag.tag_id.in_(list(tags)))
    if plan.scope is not None:  # a tag as the viewer's own managers set it
        tagged = tagged.where(FollowTag.userid.in_(plan.scope))
    # Start from the smaller side: a small book, else (not by name) the tag's relations, both read
    # in external_userid order from the cursor on; else walk the customer index.
    driver: Select[Any] | None = None
    tag_drives = plan.drive is None and plan.tag_drives and not f.q
    if plan.drive is not None:
        driver = select(Follow.external_userid).where(Follow.userid.in_(plan.drive))
    elif tag_drives:
        driver = tagged
    if driver is not None:
        if after is not None and not f.q:
            driver = driver.where(driver.selected_columns[0] > str(after[0]))
        start = driver.group_by(driver.selected_columns[0]).subquery("start")
        stmt = stmt.select_from(start).join(Customer, Customer.external_userid == start.c.external_userid)
    if plan.scope is not None and plan.drive is None:
        stmt = stmt.where(Customer.external_userid.in_(select(Follow.external_userid)
                                                       .where(Follow.userid.in_(plan.scope))))
    if f.tag and not tag_drives:
        stmt = stmt.where(Customer.external_userid.in_(tagged))
    if f.q:
        stmt = stmt.where(key >= _c(dialect, func.lower(literal(f.q, String))),
                          key < _c(dialect, func.lower(literal(f.q + TOP, String))))
    if f.crm_id:  # two indexed lookups (an OR of the two would scan the table)
        stmt = stmt.where(Customer.external_userid.in_(
            union(select(Customer.external_userid).where(Customer.crm_id == f.crm_id),
                  select(Binding.external_userid).where(Binding.crm_id == f.crm_id))))
    if after is not None:
        bound = ([_c(dialect, literal(str(after[0]), String)), literal(str(after[1]), String)] if f.q
                 else [literal(str(after[0]), String)])
        stmt = stmt.where(tuple_(*order) > tuple_(*bound) if f.q else Customer.external_userid > bound[0])
    return stmt.order_by(*order).limit(PAGE + 1)


# A scoped book up to this many relations is read from the manager side; a larger one is a big
# enough share of the bank that walking the customer index finds a page within a few hundred rows.
SMALL_BOOK = 10_000


async def _fewer_than(db: AsyncSession, rows: Select[Any], n: int) -> bool:
    """Whether ``rows`` has fewer than ``n`` rows, reading at most ``n`` (an index-only count)."""
    return int(await db.scalar(select(func.count()).select_from(rows.limit(n).subquery())) or 0) < n


async def plan_of(db: AsyncSession, grant: Grant, f: Filters, tags: Sequence[str] = ()) -> Plan:
    """Which managers' customers the search may return, and where it starts. Raises
    :class:`BadSearch` for an unknown manager and :class:`ScopeRefused` for one outside the grant."""
    if f.manager:
        try:
            await resolve(db, grant, manager=f.manager)
        except BadScope as exc:
            raise BadSearch(str(exc)) from None
    rare_tag = bool(tags) and not f.q and await _fewer_than(
        db, select(FollowTag.tag_id).where(FollowTag.tag_id.in_(list(tags))), SMALL_BOOK)
    if grant.whole_bank:
        return Plan(None, [f.manager] if f.manager else None, rare_tag)
    scope = list((await db.scalars(select(Member.userid).where(under(grant.scope)))).all())
    if f.manager:  # inside the grant (resolve checked): every customer of theirs is the viewer's to see
        return Plan(scope, [f.manager])
    small = await _fewer_than(db, select(Follow.id).where(Follow.userid.in_(scope)), SMALL_BOOK)
    return Plan(scope, scope if small else None, rare_tag)


def dialect_of(db: AsyncSession) -> str:
    return db.get_bind().dialect.name


async def search(db: AsyncSession, grant: Grant, f: Filters, *, after: str = "") -> SearchPage:
    """One page of customers. Raises :class:`BadSearch` (a malformed cursor, an unknown manager)
    and :class:`ScopeRefused` (a manager outside the grant)."""
    cursor = decode_cursor(after, 2 if f.q else 1) if after else None
    tags: list[str] = []
    if f.tag:
        tags = await tag_ids(db, f.tag)
        if not tags:
            await plan_of(db, grant, f)  # an unknown or out-of-scope manager is still refused
            return SearchPage([], "", notice=f"没有名为「{f.tag}」的标签")
    plan = await plan_of(db, grant, f, tags)
    rows = (await db.execute(search_query(f, plan, dialect_of(db), tags=tags, after=cursor))).all()
    more = len(rows) > PAGE
    rows = rows[:PAGE]
    managers = await _managers_of(db, plan, [r.external_userid for r in rows])
    found = [Found(r.external_userid, r.name, r.crm_id or "", managers.get(r.external_userid, [])) for r in rows]
    last = rows[-1] if rows else None
    cursor_out = "" if not more or last is None else (
        encode_cursor(last.key, last.external_userid) if f.q else encode_cursor(last.external_userid))
    return SearchPage(found, cursor_out)


async def _managers_of(db: AsyncSession, plan: Plan, customers: Sequence[str]) -> dict[str, list[str]]:
    """The relations the viewer sees of one page of customers, as short labels."""
    if not customers:
        return {}
    stmt = (select(Follow.external_userid, Follow.userid, Follow.status, Member.name)
            .outerjoin(Member, Member.userid == Follow.userid)
            .where(Follow.external_userid.in_(list(customers))).order_by(Follow.external_userid, Follow.created_at))
    if plan.scope is not None:
        stmt = stmt.where(Follow.userid.in_(plan.scope))
    out: dict[str, list[str]] = {}
    for ext, userid, status, name in (await db.execute(stmt)).all():
        label = name or userid
        if status != "active":
            label += f"（{RELATION_STATUS.get(status, status)}）"
        out.setdefault(ext, []).append(label)
    return out


# ---- one customer -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Relation:
    userid: str
    manager: str
    department: str
    since: datetime
    channel: str
    status: str
    status_at: datetime | None
    remark: str
    tags: list[str]  # group/tag


@dataclass(frozen=True)
class Entry:
    id: int
    at: datetime
    what: str
    detail: str


@dataclass(frozen=True)
class Sent:
    at: datetime
    by: str  # "SOP" or the manager
    what: str
    source: str


@dataclass(frozen=True)
class Opened:
    at: datetime
    material: str
    sender: str


@dataclass(frozen=True)
class Card:
    task_id: str
    day: str
    title: str
    manager: str
    status: str


@dataclass
class CustomerDetail:
    external_userid: str
    name: str  # the CRM's name, else WeCom's
    wecom_name: str  # the name the customer gave WeCom
    crm_id: str
    attributes: list[tuple[str, str]]  # (label, value), AUM as its band
    relations: list[Relation]
    hidden_relations: int  # relations with managers outside the viewer's scope
    timeline: list[Entry]
    timeline_before: str  # the cursor of the next (older) page, "" when none
    sent: list[Sent] = field(default_factory=list)
    opened: list[Opened] = field(default_factory=list)
    tasks: list[Card] = field(default_factory=list)


def check_id(external_userid: str) -> str:
    if not ID_SHAPE.fullmatch(external_userid):
        raise BadSearch("not a customer id (letters, digits and _-.@: only, at most 128)")
    return external_userid


async def visible_relations(db: AsyncSession, grant: Grant, external_userid: str,
                            customer: Customer | None) -> tuple[list[Any], int]:
    """The customer's relations the grant covers, and how many others there are. Raises
    :class:`NotFound` for an unknown customer and :class:`ScopeRefused` when none is covered."""
    rows = (await db.execute(select(Follow, Member.name, Member.department)
                             .outerjoin(Member, Member.userid == Follow.userid)
                             .where(Follow.external_userid == external_userid)
                             .order_by(Follow.created_at, Follow.id))).all()
    if customer is None and not rows:
        raise NotFound(external_userid)
    seen = [r for r in rows if grant.whole_bank or (r.department is not None and grant.covers(r.department))]
    if not seen and not grant.whole_bank:
        raise ScopeRefused(external_userid)
    return seen, len(rows) - len(seen)


async def customer_detail(db: AsyncSession, grant: Grant, external_userid: str, *, playbook: Playbook | None,
                          before: str = "") -> CustomerDetail:
    """Everything the customer page shows, scoped by ``grant``. Raises :class:`BadSearch`,
    :class:`NotFound` or :class:`ScopeRefused`."""
    check_id(external_userid)
    cursor = decode_cursor(before, 2) if before else None
    customer = await db.get(Customer, external_userid)
    rows, hidden = await visible_relations(db, grant, external_userid, customer)
    managers = [r.Follow.userid for r in rows]
    crm_id, attrs = await _crm(db, customer, external_userid)
    tags = await _tags(db, external_userid, managers)
    channels = playbook.channels if playbook is not None else {}
    relations = [Relation(f.userid, name or f.userid, department or "", f.created_at,
                          channels[f.state].name if f.state in channels else ADD_WAYS.get(f.add_way, "未知来源"),
                          RELATION_STATUS.get(f.status, f.status), f.status_at, f.remark, tags.get(f.userid, []))
                 for f, name, department in rows]
    entries, older = await timeline_page(db, external_userid, playbook, cursor)
    name = str(attrs.get("name") or (customer.name if customer is not None else "") or external_userid)
    return CustomerDetail(
        external_userid, name, customer.name if customer is not None else "", crm_id,
        shown_attributes(playbook, attrs), relations, hidden, entries, older,
        sent=await sends(db, external_userid, playbook), opened=await opens(db, external_userid, playbook),
        tasks=await cards(db, grant, external_userid, managers))


async def _crm(db: AsyncSession, customer: Customer | None, external_userid: str) -> tuple[str, dict[str, Any]]:
    """The customer's CRM id and record: their own crm_id, else the newest binding's."""
    crm_id = customer.crm_id if customer is not None else None
    if not crm_id:
        crm_id = await db.scalar(select(Binding.crm_id).where(Binding.external_userid == external_userid)
                                 .order_by(Binding.bound_at.desc()).limit(1))
    record = await db.get(CrmCustomer, crm_id) if crm_id else None
    return crm_id or "", dict(record.attributes or {}) if record is not None else {}


def _label(playbook: Playbook | None, attribute: str, value: object) -> str:
    """A CRM value as the tag map names it (``crm.tier`` V1 → 客户等级 label), else as given."""
    for spec in (playbook.tag_groups.values() if playbook is not None else ()):
        if spec.source == f"crm.{attribute}" and spec.map:
            return spec.map.get(str(value), str(value))
    return str(value)


def shown_attributes(playbook: Playbook | None, attrs: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The allow-listed CRM attributes as (label, text); AUM only as its band."""
    out: list[tuple[str, str]] = []
    for key, label in SHOWN_ATTRIBUTES:
        value = attrs.get(key)
        if value is None or value == "" or value == []:
            continue
        values = value if isinstance(value, list) else str(value).split("|") if key == "products" else [value]
        out.append((label, "、".join(_label(playbook, key, v) for v in values if str(v))))
    band = aum_band(playbook.tag_groups if playbook is not None else {}, attrs.get("aum"))
    if band:
        out.append(("资产规模（区间）", band))
    return out


async def _tags(db: AsyncSession, external_userid: str, managers: Sequence[str]) -> dict[str, list[str]]:
    """``group/tag`` per relation, live tags only, in WeCom's group and tag order."""
    if not managers:
        return {}
    rows = await db.execute(
        select(FollowTag.userid, TagGroup.name, Tag.name).select_from(FollowTag)
        .join(Tag, Tag.tag_id == FollowTag.tag_id).join(TagGroup, TagGroup.group_id == Tag.group_id)
        .where(FollowTag.external_userid == external_userid, FollowTag.userid.in_(list(managers)),
               Tag.deleted.is_(False), TagGroup.deleted.is_(False))
        .order_by(TagGroup.order.desc(), Tag.order.desc(), Tag.name))
    out: dict[str, list[str]] = {}
    for userid, group, tag in rows.all():
        out.setdefault(userid, []).append(f"{group}/{tag}")
    return out


async def member_names(db: AsyncSession, userids: Iterable[str]) -> dict[str, str]:
    wanted = sorted({u for u in userids if u})
    if not wanted:
        return {}
    return {u: n or u for u, n in (await db.execute(select(Member.userid, Member.name)
                                                      .where(Member.userid.in_(wanted)))).all()}


def material_title(playbook: Playbook | None, material: str) -> str:
    m = playbook.materials.get(material) if playbook is not None and material else None
    return (m.title or m.id) if m is not None else material


def describe(detail: Mapping[str, Any], names: Mapping[str, str], playbook: Playbook | None) -> str:
    """A timeline detail as people read it: only :data:`DETAIL_KEYS`, members by name."""
    parts = []
    for key, label in DETAIL_KEYS.items():
        value = detail.get(key)
        if value is None or value == "" or isinstance(value, dict | list):
            continue
        text = str(value)
        if key in MEMBER_KEYS:
            text = names.get(text, text)
        elif key == "material":
            text = material_title(playbook, text)
        parts.append(f"{label}：{text[:80]}")
    return "；".join(parts)


async def timeline_page(db: AsyncSession, external_userid: str, playbook: Playbook | None,
                        cursor: Sequence[Any] | None) -> tuple[list[Entry], str]:
    """One page of the customer's timeline, newest first, before ``cursor`` (at, id)."""
    stmt = select(Timeline).where(Timeline.subject_type == "customer", Timeline.subject_id == external_userid)
    if cursor is not None:
        try:
            at, ident = datetime.fromisoformat(str(cursor[0])), int(cursor[1])
        except ValueError:
            raise BadSearch("before: not a cursor of this page") from None
        # at <= bound is the index range; the tie on the same instant is broken by id.
        stmt = stmt.where(Timeline.at <= at, or_(Timeline.at < at, Timeline.id < ident))
    rows = list((await db.scalars(stmt.order_by(Timeline.at.desc(), Timeline.id.desc())
                                  .limit(TIMELINE_PAGE + 1))).all())
    more = len(rows) > TIMELINE_PAGE
    rows = rows[:TIMELINE_PAGE]
    names = await member_names(db, (str(e.detail.get(k, "")) for e in rows for k in MEMBER_KEYS
                                    if isinstance(e.detail, dict)))
    entries = [Entry(e.id, e.at, KIND_LABELS.get(e.kind, e.kind),
                     describe(e.detail if isinstance(e.detail, dict) else {}, names, playbook)) for e in rows]
    return entries, encode_cursor(rows[-1].at.isoformat(), rows[-1].id) if more else ""


async def sends(db: AsyncSession, external_userid: str, playbook: Playbook | None) -> list[Sent]:
    """The newest messages sent to the customer: the SOP's pushes and the managers' sidebar sends."""
    sop = (await db.scalars(select(SopSend).where(SopSend.target == external_userid,
                                                  SopSend.target_type == "customer")
                            .order_by(SopSend.day.desc(), SopSend.id.desc()).limit(LATEST))).all()
    chat = (await db.scalars(select(Timeline).where(Timeline.subject_type == "customer",
                                                    Timeline.subject_id == external_userid,
                                                    Timeline.kind == "sidebar.send")
                             .order_by(Timeline.at.desc(), Timeline.id.desc()).limit(LATEST))).all()
    names = await member_names(db, [s.sender for s in sop] + [str(e.detail.get("manager", "")) for e in chat])
    out = [Sent(s.created_at, names.get(s.sender, s.sender) if s.sender else "SOP",
                material_title(playbook, s.material), f"{s.source} · {s.step}") for s in sop]
    out += [Sent(e.at, names.get(str(e.detail.get("manager", "")), str(e.detail.get("manager", ""))),
                 str(e.detail.get("title") or material_title(playbook, str(e.detail.get("material", "")))), "侧边栏")
            for e in chat]
    return sorted(out, key=lambda s: s.at, reverse=True)[:LATEST]


async def opens(db: AsyncSession, external_userid: str, playbook: Playbook | None) -> list[Opened]:
    rows = (await db.scalars(select(RadarClick).where(RadarClick.external_userid == external_userid)
                             .order_by(RadarClick.at.desc(), RadarClick.id.desc()).limit(LATEST))).all()
    names = await member_names(db, (r.sender for r in rows))
    return [Opened(r.at, material_title(playbook, r.material_id), names.get(r.sender, r.sender)) for r in rows]


async def cards(db: AsyncSession, grant: Grant, external_userid: str, managers: Sequence[str]) -> list[Card]:
    """The newest task cards about the customer, of the relations the viewer sees."""
    stmt = select(SopTask).where(SopTask.target == external_userid)
    if not grant.whole_bank:
        stmt = stmt.where(SopTask.userid.in_(list(managers)))
    rows = (await db.scalars(stmt.order_by(SopTask.day.desc(), SopTask.task_id).limit(LATEST))).all()
    names = await member_names(db, (t.userid for t in rows))
    return [Card(t.task_id, t.day.isoformat(), t.title, names.get(t.userid, t.userid),
                 TASK_STATUS.get(t.status, t.status)) for t in rows]
