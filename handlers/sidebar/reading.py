"""One customer as the 1:1 panel needs them, read in three statements: their relations (with
each manager's team lead and name), their customer row with the CRM record it reaches, and the
corp tags on every relation.

The panel used to ask the same things many times over (the access check, the panel, the
suitability check and the upcoming sends each read the follows, the CRM record or the tags
again: 23 statements a panel). Each statement costs the service a round trip and SQLAlchemy's
work, which on a shared 2-core host is most of a panel's CPU; here each table is read once and
the parts are derived in Python, with the same rules as the queries they replace.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, String, bindparam, exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.contacts.api import Customer, Follow, Member
from handlers.crm.api import Binding, CrmCustomer
from handlers.sidebar.access import CustomerAccess
from handlers.sop.api import CustomerTarget
from handlers.sop.api import FollowInfo as PlannerFollow
from handlers.tags.api import FollowTag, Tag, TagGroup


@dataclass(frozen=True)
class Relation:
    """One follow relation of the customer (any status) and what the member table says of its manager."""

    userid: str
    status: str
    remark: str
    state: str
    add_way: int
    created_at: datetime
    last_contact_at: datetime | None
    team_lead: str | None
    manager_name: str | None  # None: no member row


@dataclass(frozen=True)
class TagOnRelation:
    userid: str
    tag_id: str
    group: str
    tag: str
    tag_deleted: bool
    group_deleted: bool

    @property
    def label(self) -> str:
        return f"{self.group}/{self.tag}"


@dataclass(frozen=True)
class CustomerRead:
    external_userid: str
    known: bool  # a customer row exists
    name: str
    own_crm_id: str | None  # the customer row's
    crm_id: str | None  # its own, else the latest binding's
    attributes: dict[str, Any] | None  # the CRM record's (None: the CRM has no record)
    crm_updated_at: datetime | None
    relations: list[Relation]
    tags: list[TagOnRelation]  # in WeCom's group and tag order (group order, tag order descending)

    def access(self, viewer: str) -> CustomerAccess | None:
        """As :func:`handlers.sidebar.access.customer_access`: the active relations the viewer
        may act for (their own, or their team's), their own first."""
        managers = sorted({r.userid for r in self.relations
                           if r.status == "active" and viewer in (r.userid, r.team_lead)},
                          key=lambda u: (u != viewer, u))
        return CustomerAccess(viewer, tuple(managers)) if managers else None

    def relation(self, userid: str) -> Relation:
        return next(r for r in self.relations if r.userid == userid and r.status == "active")

    def manager_names(self, userids: Iterable[str]) -> dict[str, str]:
        """userid → the member's name (their userid when the name is empty); members only."""
        wanted = set(userids)
        return {r.userid: r.manager_name or r.userid for r in self.relations
                if r.userid in wanted and r.manager_name is not None}

    def tag_names(self, managers: Iterable[str]) -> list[str]:
        """``group/tag`` of the live corp tags these relations carry, in WeCom's order."""
        mine = set(managers)
        return list(dict.fromkeys(t.label for t in self.tags
                                  if t.userid in mine and not t.tag_deleted and not t.group_deleted))

    def relation_tags(self, userid: str) -> dict[str, str]:
        """``group/tag`` → tag id of the live tags on one relation."""
        return {t.label: t.tag_id for t in self.tags
                if t.userid == userid and not t.tag_deleted and not t.group_deleted}

    def customer_tags(self) -> set[str]:
        """``group/tag`` of every tag on any relation whose tag is not deleted: the customer's tags
        as a path SOP's ``when:`` reads them, which a material's ``for_tags`` reads the same way."""
        return {t.label for t in self.tags if not t.tag_deleted}

    def planner_target(self) -> CustomerTarget | None:
        """The customer as the SOP planner reads them (``handlers.sop.api.iter_customers``):
        active follows, the tags of every relation whose tag is not deleted, CRM attributes."""
        if not self.known:
            return None
        follows = [PlannerFollow(r.userid, r.remark, r.created_at, r.last_contact_at)
                   for r in self.relations if r.status == "active"]
        return CustomerTarget(self.external_userid, self.name, self.crm_id, dict(self.attributes or {}), follows,
                              self.customer_tags())


# Built once: a statement object caches its SQLAlchemy cache key, and building the same select
# (with its subqueries) on every panel cost more of the service's CPU than running it.
_EXT = bindparam("ext", type_=String)
_RELATIONS = (select(Follow.userid, Follow.status, Follow.remark, Follow.state, Follow.add_way, Follow.created_at,
                     Follow.last_contact_at, Member.team_lead, Member.name)
              .outerjoin(Member, Member.userid == Follow.userid)
              .where(Follow.external_userid == _EXT).order_by(Follow.id))


def _record_statement() -> Select[Any]:
    """The customer row, and the CRM record its own CRM id (else its latest binding's) names."""
    own = select(Customer.crm_id).where(Customer.external_userid == _EXT).scalar_subquery()
    bound = (select(Binding.crm_id).where(Binding.external_userid == _EXT)
             .order_by(Binding.bound_at.desc()).limit(1).scalar_subquery())
    keys = select(exists().where(Customer.external_userid == _EXT).label("known"),
                  select(Customer.name).where(Customer.external_userid == _EXT).scalar_subquery().label("name"),
                  own.label("own"),
                  func.coalesce(func.nullif(own, ""), func.nullif(bound, "")).label("crm_id")).subquery()
    return (select(keys.c.known, keys.c.name, keys.c.own, keys.c.crm_id, CrmCustomer.crm_id, CrmCustomer.attributes,
                   CrmCustomer.updated_at)
            .select_from(keys.outerjoin(CrmCustomer, CrmCustomer.crm_id == keys.c.crm_id)))


_RECORD = _record_statement()
_TAGS = (select(FollowTag.userid, Tag.tag_id, TagGroup.name, Tag.name, Tag.deleted, TagGroup.deleted)
         .select_from(FollowTag).join(Tag, Tag.tag_id == FollowTag.tag_id)
         .join(TagGroup, TagGroup.group_id == Tag.group_id)
         .where(FollowTag.external_userid == _EXT)
         .order_by(TagGroup.order.desc(), Tag.order.desc(), Tag.name))


async def read_customer(db: AsyncSession, external_userid: str) -> CustomerRead:
    ext = {"ext": external_userid}
    relations = [Relation(*row) for row in (await db.execute(_RELATIONS, ext)).all()]
    known, name, own_crm_id, crm_id, record, attributes, updated_at = (await db.execute(_RECORD, ext)).one()
    tags = [TagOnRelation(u, tid, g, t, bool(td), bool(gd))
            for u, tid, g, t, td, gd in (await db.execute(_TAGS, ext)).all()]
    return CustomerRead(external_userid, bool(known), name or "", own_crm_id, crm_id or None,
                        dict(attributes or {}) if record is not None else None,
                        updated_at if record is not None else None, relations, tags)
