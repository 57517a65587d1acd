"""Linking CRM customers to WeCom external contacts (the ``binding`` table).

Three ways, strongest first: an explicit binding pushed by the bank, the external_userid
given directly on the CRM row, and the unionid (WeCom returns it from externalcontact/get when
the corp bound a WeChat developer account). A CRM row that matches no contact yet simply waits:
:func:`link_contact` links it when the contact appears.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, literal, select, union_all, update
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.contacts.api import Customer
from handlers.crm.models import Binding, CrmCustomer
from scrm.adapters.db.engine import dialect_of, insert_ignore, table_of, upsert

EXPLICIT, DIRECT, UNIONID = "explicit", "direct", "unionid"
_RANK = {EXPLICIT: 3, DIRECT: 2, UNIONID: 1}


async def bind(session: AsyncSession, links: Mapping[str, str], source: str, now: datetime) -> list[str]:
    """Bind ``crm_id → external_userid``; a weaker source never replaces a stronger binding.

    Returns the crm_ids whose binding is new or changed.
    """
    if not links:
        return []
    existing = {b.crm_id: b for b in (await session.scalars(
        select(Binding).where(Binding.crm_id.in_(list(links))))).all()}
    rows: list[dict[str, Any]] = []
    for crm_id, ext in links.items():
        old = existing.get(crm_id)
        if old is not None and (old.external_userid == ext or _RANK.get(old.source, 0) > _RANK[source]):
            continue
        rows.append({"crm_id": crm_id, "external_userid": ext, "source": source, "bound_at": now})
    if rows:
        await session.execute(upsert(dialect_of(session), table_of(Binding), ["crm_id"],
                                     ["external_userid", "source", "bound_at"]), rows)
        for row in rows:
            await session.execute(update(Customer).where(Customer.external_userid == row["external_userid"])
                                  .values(crm_id=row["crm_id"]))
    return [r["crm_id"] for r in rows]


async def link_by_unionid(session: AsyncSession, unionids: Mapping[str, str], now: datetime) -> list[str]:
    """``crm_id → unionid``: bind those whose contact we already know."""
    if not unionids:
        return []
    found = (await session.execute(select(Customer.unionid, Customer.external_userid)
                                   .where(Customer.unionid.in_(set(unionids.values()))))).all()
    by_union = {u: ext for u, ext in found if u}
    links = {crm: by_union[u] for crm, u in unionids.items() if u in by_union}
    return await bind(session, links, UNIONID, now)


async def link_contact(session: AsyncSession, external_userid: str, unionid: str | None,
                       now: datetime) -> list[str]:
    """A contact appeared (or was re-read): link waiting CRM rows with its unionid.

    Returns every crm_id bound to the contact (new or old), so the caller can sync its tags.
    """
    if not unionid:
        return list((await session.scalars(_BOUND_TO, {"e": external_userid})).all())
    # The rows waiting for the unionid and those bound already, in one statement.
    found = (await session.execute(_WAITING_OR_BOUND, {"u": unionid, "e": external_userid})).all()
    bound = [crm for crm, waiting in found if not waiting]
    # A waiting row bound to this contact already stays as it is (``bind`` would skip it too).
    waiting = [crm for crm, is_waiting in found if is_waiting and crm not in bound]
    if not waiting:
        return bound
    await bind(session, dict.fromkeys(waiting, external_userid), UNIONID, now)
    return list((await session.scalars(_BOUND_TO, {"e": external_userid})).all())


async def link_contacts(session: AsyncSession, unionids: Mapping[str, str | None], now: datetime) -> list[str]:
    """Many contacts appeared at once (``external_userid → unionid``, a backfill page): link the
    CRM rows waiting for their unionids, as :func:`link_contact` does one by one.

    Returns every crm_id bound to one of the contacts (new or old), so the caller can sync their tags.
    """
    by_union = {u: ext for ext, u in unionids.items() if u}
    if by_union:
        waiting = (await session.execute(select(CrmCustomer.crm_id, CrmCustomer.unionid)
                                         .where(CrmCustomer.unionid.in_(list(by_union))))).all()
        await bind(session, {crm: by_union[u] for crm, u in waiting if u in by_union}, UNIONID, now)
    if not unionids:
        return []
    bound = await session.scalars(select(Binding.crm_id).where(Binding.external_userid.in_(list(unionids))))
    return sorted(set(bound.all()))


# Read for every added contact: built once, on the tables.
_WAITING_FOR = select(table_of(CrmCustomer).c.crm_id).where(table_of(CrmCustomer).c.unionid == bindparam("u"))
_BOUND_TO = select(table_of(Binding).c.crm_id).where(table_of(Binding).c.external_userid == bindparam("e"))
_WAITING_OR_BOUND = union_all(
    select(table_of(CrmCustomer).c.crm_id, literal(True).label("waiting"))
    .where(table_of(CrmCustomer).c.unionid == bindparam("u")),
    select(table_of(Binding).c.crm_id, literal(False).label("waiting"))
    .where(table_of(Binding).c.external_userid == bindparam("e")))


async def crm_ids_of(session: AsyncSession, external_userids: Iterable[str]) -> dict[str, str]:
    """``external_userid → crm_id`` for the linked ones."""
    ids = list(set(external_userids))
    if not ids:
        return {}
    rows = await session.execute(select(Binding.external_userid, Binding.crm_id)
                                 .where(Binding.external_userid.in_(ids)))
    return {ext: crm for ext, crm in rows.all()}


async def ensure_rows(session: AsyncSession, crm_ids: Iterable[str], now: datetime) -> None:
    """Bindings may arrive before the customer's attributes: keep an empty CRM row to attach to."""
    rows = [{"crm_id": c, "attributes": {}, "updated_at": now} for c in set(crm_ids)]
    if rows:
        await session.execute(insert_ignore(dialect_of(session), table_of(CrmCustomer), ["crm_id"]), rows)
