"""Who a customer is beyond their external_userid, for the self-referral checks: their WeChat
unionid (the same person under another corp subject, or re-added) and the CRM ids bound to them
(the same bank customer behind two WeChat accounts)."""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.contacts.api import Customer
from handlers.crm.api import Binding


async def unionid_of(session: AsyncSession, external_userid: str) -> str | None:
    value = await session.scalar(select(Customer.unionid).where(Customer.external_userid == external_userid))
    return value or None


async def crm_ids_of(session: AsyncSession, external_userid: str) -> set[str]:
    """Every CRM id bound to the contact (the CRM's binding table, and the one WeCom's mirror holds)."""
    bound = set((await session.scalars(select(Binding.crm_id).where(Binding.external_userid == external_userid))).all())
    own = await session.scalar(select(Customer.crm_id).where(Customer.external_userid == external_userid))
    return bound | ({own} if own else set())


async def same_person(session: AsyncSession, a: str, b: str, *, also_crm: Collection[str] = ()) -> str | None:
    """Why ``a`` and ``b`` are one person: ``self`` (one contact), ``self_unionid``, ``self_crm``;
    None when nothing says so. ``also_crm``: CRM ids known to be ``a``'s besides the bound ones
    (the id a CRM event names)."""
    if a == b:
        return "self"
    ua, ub = await unionid_of(session, a), await unionid_of(session, b)
    if ua and ua == ub:
        return "self_unionid"
    if ((await crm_ids_of(session, a)) | set(also_crm)) & (await crm_ids_of(session, b)):
        return "self_crm"
    return None
