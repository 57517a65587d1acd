"""Streaming reads of who the SOPs are about: groups by type, customers with follows, tags, CRM.

Customers are read in keyset-paginated batches (``external_userid > last``), each batch with
its follows, tags and CRM attributes in three more queries, so memory stays flat whatever the
number of customers (the planner must handle a million of them on a small machine).

A time slot's paths do not need every customer: :func:`candidate_ids` asks the database for a
*superset* of the customers each path can act on that day (its tag combination, and an anchor
value that puts one of its steps on the day), so the planner reads tens of thousands of rows
instead of a million. The planner still checks every candidate exactly as before; the SQL
only has to never leave out a customer the exact check would keep.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Select, and_, exists, func, not_, or_, select, union
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.contacts.api import Customer, Follow, Member
from handlers.crm.api import Binding, CrmCustomer, CrmGroup
from handlers.groups.api import GroupChat
from handlers.tags.api import FollowTag, Tag, TagGroup
from scrm.playbook.expr import ANCHORS

BATCH = 2000


@dataclass(frozen=True)
class GroupTarget:
    chat_id: str
    name: str
    owner: str
    group_type: str
    created_at: datetime
    payday: int | None = None  # the employer's payday the CRM gave for this group (else the type's)


@dataclass(frozen=True)
class FollowInfo:
    userid: str
    remark: str
    created_at: datetime
    last_contact_at: datetime | None


@dataclass
class CustomerTarget:
    """One customer as the SOPs see it: tags across follows, CRM attributes, its managers."""

    external_userid: str
    name: str
    crm_id: str | None
    attributes: dict[str, Any] = field(default_factory=dict)
    follows: list[FollowInfo] = field(default_factory=list)
    tags: set[str] = field(default_factory=set)

    @property
    def manager(self) -> FollowInfo | None:
        """The primary manager: the oldest active follow (the one who brought the customer in)."""
        return min(self.follows, key=lambda f: f.created_at) if self.follows else None

    def values(self) -> dict[str, object]:
        """``crm.*`` values for conditions and templates."""
        return {f"crm.{k}": v for k, v in self.attributes.items()}


async def iter_groups(session: AsyncSession, group_types: Sequence[str]) -> AsyncIterator[GroupTarget]:
    """Active groups of ``group_types`` with a known creation time, in chat id order."""
    last = ""
    while True:
        rows = (await session.execute(
            select(GroupChat.chat_id, GroupChat.name, GroupChat.owner, GroupChat.group_type, GroupChat.created_at,
                   CrmGroup.payday)
            .outerjoin(CrmGroup, CrmGroup.chat_id == GroupChat.chat_id)
            .where(GroupChat.group_type.in_(list(group_types)), GroupChat.status == "active",
                   GroupChat.created_at.is_not(None), GroupChat.chat_id > last)
            .order_by(GroupChat.chat_id).limit(BATCH))).all()
        if not rows:
            return
        for chat_id, name, owner, gtype, created, payday in rows:
            if created is not None:  # filtered above; narrows the type
                yield GroupTarget(chat_id, name, owner, gtype or "", created, payday)
        if len(rows) < BATCH:  # the last page: no need to ask for an empty one
            return
        last = rows[-1][0]


async def tag_names(session: AsyncSession) -> dict[str, str]:
    """tag_id → ``group/tag`` for every live corp tag (≤ 3,000 in WeCom, so held in memory)."""
    rows = await session.execute(
        select(Tag.tag_id, TagGroup.name, Tag.name).join(TagGroup, TagGroup.group_id == Tag.group_id)
        .where(Tag.deleted.is_(False)))
    return {tag_id: f"{group}/{name}" for tag_id, group, name in rows.all()}


async def member_names(session: AsyncSession) -> dict[str, str]:
    return {u: n for u, n in (await session.execute(select(Member.userid, Member.name))).all()}


async def iter_customers(session: AsyncSession, tags: dict[str, str], *,
                         only: Sequence[str] | None = None, batch: int = BATCH) -> AsyncIterator[list[CustomerTarget]]:
    """Batches of customers with at least one active follow (all of them, or just ``only``)."""
    last = ""
    while True:
        q = select(Customer.external_userid, Customer.name, Customer.crm_id).order_by(Customer.external_userid)
        q = q.where(Customer.external_userid.in_(list(only))) if only is not None else q.where(
            Customer.external_userid > last).limit(batch)
        rows = (await session.execute(q)).all()
        if not rows:
            return
        found = {ext: CustomerTarget(ext, name, crm) for ext, name, crm in rows}
        # A full scan reads a contiguous key range: fetch its rows by range (index range scan)
        # rather than by a list of 2,000 bound parameters, which costs more to build than to run.
        await _fill(session, found, tags, span=None if only is not None else (last, rows[-1][0]))
        yield [t for t in found.values() if t.follows]
        if only is not None or len(rows) < batch:
            return
        last = rows[-1][0]


async def iter_customers_in(session: AsyncSession, tags: dict[str, str], ids: Sequence[str], *,
                            batch: int = BATCH) -> AsyncIterator[list[CustomerTarget]]:
    """Like :func:`iter_customers` for a list of ids (in their order), ``batch`` at a time."""
    for start in range(0, len(ids), batch):
        async for found in iter_customers(session, tags, only=ids[start:start + batch]):
            yield found


async def _fill(session: AsyncSession, found: dict[str, CustomerTarget], tags: dict[str, str], *,
                span: tuple[str, str] | None = None) -> None:
    """Follows, tags and CRM attributes of ``found``: by id list, or by the key range ``span``
    (exclusive, inclusive) that holds exactly the customers of ``found``."""

    def among(column: Any) -> ColumnElement[bool]:
        if span is None:
            return column.in_(list(found))  # type: ignore[no-any-return]
        return and_(column > span[0], column <= span[1])

    follows = await session.execute(
        select(Follow.external_userid, Follow.userid, Follow.remark, Follow.created_at, Follow.last_contact_at)
        .where(among(Follow.external_userid), Follow.status == "active"))
    for ext, userid, remark, created, contact in follows.all():
        target = found.get(ext)  # a range may hold follows of customers we have no row for
        if target is not None:
            target.follows.append(FollowInfo(userid, remark, created, contact))
    tag_rows = await session.execute(
        select(FollowTag.external_userid, FollowTag.tag_id).where(among(FollowTag.external_userid)))
    for ext, tag_id in tag_rows.all():
        name = tags.get(tag_id)
        target = found.get(ext)
        if name and target is not None:
            target.tags.add(name)
    bindings = await session.execute(select(Binding.external_userid, Binding.crm_id)
                                     .where(among(Binding.external_userid)))
    for ext, crm_id in bindings.all():
        target = found.get(ext)
        if target is not None:
            target.crm_id = target.crm_id or crm_id
    crm_ids = {t.crm_id: t for t in found.values() if t.crm_id}
    if crm_ids:
        attrs = await session.execute(select(CrmCustomer.crm_id, CrmCustomer.attributes)
                                      .where(CrmCustomer.crm_id.in_(list(crm_ids))))
        for crm_id, attributes in attrs.all():
            crm_ids[crm_id].attributes = dict(attributes or {})


# -- narrowing: who can a path act on today? ------------------------------------------------

MARGIN = timedelta(minutes=1)
REFERENCE_YEAR = 2000
"""A leap year: yearly anchors (birthdays) are given as dates in it; only month and day count."""


@dataclass(frozen=True)
class Audience:
    """What SQL can check of one path's audience on one day and slot.

    ``values`` are the anchor values that put a step of the path on the day: days of month
    (monthly anchors), dates in :data:`REFERENCE_YEAR` (yearly ones) or dates (once ones).
    ``any_tags`` empty means "no ``any`` condition"; ``none`` tags and CRM conditions are left
    to the exact check in Python.
    """

    anchor: str
    values: frozenset[int] | frozenset[date]
    all_tags: tuple[str, ...] = ()
    any_tags: tuple[str, ...] = ()


async def candidate_ids(session: AsyncSession, tags: dict[str, str], audiences: Iterable[Audience],
                        tz: ZoneInfo) -> list[str]:
    """Ids of the customers any of ``audiences`` may hold, in ``external_userid`` order.

    A superset: a customer left out here is one the planner's exact check would reject.
    Only ids are held in memory (≈70 bytes each); the planner reads the details in batches.
    """
    ids_of: dict[str, list[str]] = {}
    for tag_id, name in tags.items():
        ids_of.setdefault(name, []).append(tag_id)
    selects: list[Select[Any]] = []
    for a in audiences:
        conds = _tag_conditions(a, ids_of)
        if conds is None or not a.values:
            continue  # a tag nobody can have, or no anchor value fits: nobody
        selects.append(select(Customer.external_userid).where(*conds, _anchor_condition(a, tz)))
    if not selects:
        return []
    if len(selects) == 1:
        q = selects[0].order_by(Customer.external_userid)
    else:
        u = union(*selects).subquery()
        q = select(u.c.external_userid).order_by(u.c.external_userid)
    return [str(ext) for ext in (await session.scalars(q)).all()]


def _tag_conditions(a: Audience, ids_of: dict[str, list[str]]) -> list[ColumnElement[bool]] | None:
    """One ``IN (customers with this tag)`` per ``all`` tag, one for the ``any`` list; None when
    a required tag does not exist (nobody can match)."""

    def having(tag_ids: list[str]) -> ColumnElement[bool]:
        # Tags count across all of a customer's follows, active or not (as CustomerTarget.tags).
        return Customer.external_userid.in_(select(FollowTag.external_userid).where(FollowTag.tag_id.in_(tag_ids)))

    conds: list[ColumnElement[bool]] = []
    for name in a.all_tags:
        if not ids_of.get(name):
            return None
        conds.append(having(ids_of[name]))
    if a.any_tags:
        any_ids = [i for name in a.any_tags for i in ids_of.get(name, [])]
        if not any_ids:
            return None
        conds.append(having(any_ids))
    return conds


def _anchor_condition(a: Audience, tz: ZoneInfo) -> ColumnElement[bool]:
    if a.anchor == "added_at":
        return _added_condition({v for v in a.values if isinstance(v, date)}, tz)
    text = CrmCustomer.attributes[a.anchor].as_string()
    repeat = ANCHORS[a.anchor][0]
    if repeat == "monthly":
        # customer_anchor() takes int(str(raw)) in 1..31. A canonical "1".."31" (JSON number or
        # string) outside the wanted days can be left out; anything else ("09", " 9", 9.5,
        # "abc") is handed to the exact check. NULL (no value) never has an anchor.
        wanted = {str(v) for v in a.values if isinstance(v, int)}
        unwanted = [str(d) for d in range(1, 32) if str(d) not in wanted]
        crm_ok: ColumnElement[bool] = text.not_in(unwanted) if unwanted else text.is_not(None)
    else:
        # _parse_date() reads raw[:10] with date.fromisoformat. "YYYY-MM-DD" has one spelling
        # per date, so a prefix of that shape is compared as text; any other prefix goes on to
        # the exact check. Yearly anchors compare only "MM-DD".
        prefix = func.substr(text, 1, 10)
        shaped = prefix.like("____-__-__")
        dates = [v for v in a.values if isinstance(v, date)]
        if repeat == "yearly":
            crm_ok = or_(not_(shaped), func.substr(text, 6, 5).in_(sorted({f"{d:%m-%d}" for d in dates})))
        else:
            crm_ok = or_(not_(shaped), prefix.in_(sorted(d.isoformat() for d in dates)))
    # The CRM record is the customer's own crm_id, else a binding's: either may be the one.
    # Correlated, so the JSON is only looked at for customers that passed the tag tests (a
    # scan of every CRM record costs ~1 s per million on SQLite).
    own = exists().where(CrmCustomer.crm_id == Customer.crm_id, crm_ok)
    bound = exists().where(Binding.external_userid == Customer.external_userid,
                           CrmCustomer.crm_id == Binding.crm_id, crm_ok)
    return or_(own, bound)


def _added_condition(days: set[date], tz: ZoneInfo) -> ColumnElement[bool]:
    """An active follow created on one of ``days`` (local dates); the primary follow is
    checked exactly later.

    SQLite compares the stored text: "YYYY-MM-DD HH:MM:SS" then an optional fraction or
    offset, which can sort a value at the very second of a bound on the wrong side of it. A
    minute of margin keeps the test a superset.
    """
    ranges: list[ColumnElement[bool]] = []
    for first, last in _runs(sorted(days)):
        lo = datetime.combine(first, time(0), tz) - MARGIN
        hi = datetime.combine(last + timedelta(days=1), time(0), tz) + MARGIN
        ranges.append(and_(Follow.created_at >= lo, Follow.created_at < hi))
    created = select(Follow.external_userid).where(Follow.status == "active", or_(*ranges))
    return Customer.external_userid.in_(created)


def _runs(days: list[date]) -> list[tuple[date, date]]:
    """Consecutive dates merged into (first, last) ranges: fewer OR terms for the database."""
    runs: list[tuple[date, date]] = []
    for d in days:
        if runs and d - runs[-1][1] <= timedelta(days=1):
            runs[-1] = (runs[-1][0], d)
        else:
            runs.append((d, d))
    return runs
