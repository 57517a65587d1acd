"""Streaming reads of who the SOPs are about: groups by type, customers with follows, tags, CRM.

Customers are read in keyset-paginated batches (``external_userid > last``), each batch with
its follows, tags and CRM attributes in three more queries, so memory stays flat whatever the
number of customers (the planner must handle a million of them on a small machine).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from scrm.db.models import Binding, CrmCustomer, Customer, Follow, FollowTag, GroupChat, Member, Tag, TagGroup

BATCH = 2000


@dataclass(frozen=True)
class GroupTarget:
    chat_id: str
    name: str
    owner: str
    group_type: str
    created_at: datetime


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
            select(GroupChat.chat_id, GroupChat.name, GroupChat.owner, GroupChat.group_type, GroupChat.created_at)
            .where(GroupChat.group_type.in_(list(group_types)), GroupChat.status == "active",
                   GroupChat.created_at.is_not(None), GroupChat.chat_id > last)
            .order_by(GroupChat.chat_id).limit(BATCH))).all()
        if not rows:
            return
        for chat_id, name, owner, gtype, created in rows:
            if created is not None:  # filtered above; narrows the type
                yield GroupTarget(chat_id, name, owner, gtype or "", created)
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
        await _fill(session, found, tags)
        yield [t for t in found.values() if t.follows]
        if only is not None:
            return
        last = rows[-1][0]


async def _fill(session: AsyncSession, found: dict[str, CustomerTarget], tags: dict[str, str]) -> None:
    ids = list(found)
    follows = await session.execute(
        select(Follow.external_userid, Follow.userid, Follow.remark, Follow.created_at, Follow.last_contact_at)
        .where(Follow.external_userid.in_(ids), Follow.status == "active"))
    for ext, userid, remark, created, contact in follows.all():
        found[ext].follows.append(FollowInfo(userid, remark, created, contact))
    tag_rows = await session.execute(
        select(FollowTag.external_userid, FollowTag.tag_id).where(FollowTag.external_userid.in_(ids)))
    for ext, tag_id in tag_rows.all():
        name = tags.get(tag_id)
        if name:
            found[ext].tags.add(name)
    bindings = await session.execute(select(Binding.external_userid, Binding.crm_id)
                                     .where(Binding.external_userid.in_(ids)))
    for ext, crm_id in bindings.all():
        found[ext].crm_id = found[ext].crm_id or crm_id
    crm_ids = {t.crm_id: t for t in found.values() if t.crm_id}
    if crm_ids:
        attrs = await session.execute(select(CrmCustomer.crm_id, CrmCustomer.attributes)
                                      .where(CrmCustomer.crm_id.in_(list(crm_ids))))
        for crm_id, attributes in attrs.all():
            crm_ids[crm_id].attributes = dict(attributes or {})
