"""A friend arriving through a referral code: attributed to its referrer, or refused and flagged.

Checked in this order, each refusal one :class:`~.models.ReferralFlag` (once per friend, code and
reason, so a replay flags nothing twice) and no referral:

- ``unknown_code``: the state looks like a code nobody holds;
- ``second_code``: the friend is already attributed to another referrer (one referrer per
  friend, ever: the first code wins). The same code again (the friend adding a second manager,
  or a replay) is no news and changes nothing;
- ``self`` / ``self_unionid`` / ``self_crm``: the friend is the referrer (same contact, same
  WeChat unionid, a CRM id bound to both);
- ``loop``: the friend is somewhere up the referrer's own chain of referrers (A→B→A);
- ``existing``: the friend was already a customer before (a relation with a manager older than
  this one, or another contact with the same unionid): not new, nothing to reward.

An attributed referral that makes the referrer's friends arriving in ``burst.within_hours``
reach ``burst.referrals`` is kept but flagged ``burst`` for ops to look at.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.contacts.api import Customer, Follow
from scrm.adapters.db.engine import dialect_of, insert_ignore, table_of

from .identity import same_person, unionid_of
from .models import PENDING, Referral, ReferralCode, ReferralFlag
from .rules import ReferralRules

MAX_CHAIN = 64  # a referrer chain longer than this is cut (and a loop that long is not a fraud pattern)


@dataclass(frozen=True)
class Arrival:
    """A contact added a manager through a contact way whose state carried ``code``."""

    friend: str
    userid: str
    code: str
    at: datetime


@dataclass(frozen=True)
class Outcome:
    attributed: bool
    referrer: str = ""
    reason: str = ""  # why not (or "burst" for an attributed one that is flagged)


async def flag(session: AsyncSession, friend: str, referrer: str, code: str, reason: str, detail: str,
               at: datetime) -> None:
    await session.execute(insert_ignore(dialect_of(session), table_of(ReferralFlag), ["friend", "code", "reason"]),
                          {"friend": friend, "referrer": referrer, "code": code, "reason": reason,
                           "detail": detail[:256], "at": at})


async def _in_chain(session: AsyncSession, referrer: str, friend: str) -> bool:
    """Whether ``friend`` (or their unionid) is ``referrer`` or up ``referrer``'s chain of referrers."""
    union = await unionid_of(session, friend)
    current: str | None = referrer
    seen: set[str] = set()
    while current is not None and current not in seen and len(seen) < MAX_CHAIN:
        seen.add(current)
        if current == friend or (union is not None and await unionid_of(session, current) == union):
            return True
        current = await session.scalar(select(Referral.referrer).where(Referral.friend == current))
    return False


async def _already_customer(session: AsyncSession, arrival: Arrival) -> bool:
    older = await session.scalar(select(func.count()).select_from(Follow).where(
        Follow.external_userid == arrival.friend, Follow.userid != arrival.userid, Follow.created_at < arrival.at))
    if older:
        return True
    union = await unionid_of(session, arrival.friend)
    if union is None:
        return False
    twins = await session.scalar(select(func.count()).select_from(Customer).where(
        Customer.unionid == union, Customer.external_userid != arrival.friend))
    return bool(twins)


async def attribute(session: AsyncSession, rules: ReferralRules, arrival: Arrival) -> Outcome:
    """Attribute ``arrival`` or refuse it (see the module's docstring), in the caller's transaction."""
    friend, code, at = arrival.friend, arrival.code, arrival.at
    referrer = await session.scalar(select(ReferralCode.external_userid).where(ReferralCode.code == code))
    if referrer is None:
        await flag(session, friend, "", code, "unknown_code", f"added {arrival.userid}", at)
        return Outcome(False, reason="unknown_code")
    first = (await session.execute(select(Referral.referrer, Referral.code).where(Referral.friend == friend))).first()
    if first is not None:
        if first.code == code:
            return Outcome(True, referrer)
        await flag(session, friend, referrer, code, "second_code", f"already referred by {first.referrer}", at)
        return Outcome(False, referrer, "second_code")
    why = await same_person(session, friend, referrer)
    if why is None and await _in_chain(session, referrer, friend):
        why = "loop"
    if why is None and await _already_customer(session, arrival):
        why = "existing"
    if why is not None:
        await flag(session, friend, referrer, code, why, f"added {arrival.userid}", at)
        return Outcome(False, referrer, why)
    result = await session.execute(
        insert_ignore(dialect_of(session), table_of(Referral), ["friend"]),
        {"friend": friend, "referrer": referrer, "code": code, "userid": arrival.userid, "arrived_at": at,
         "status": PENDING, "status_at": at, "conversion": "", "converted_at": None, "reward_month": None,
         "referrer_rewarded": False})
    if not getattr(result, "rowcount", 1):  # another code's arrival, committed meanwhile, won
        return await attribute(session, rules, arrival)
    since = at - timedelta(hours=rules.burst.within_hours)
    recent = await session.scalar(select(func.count()).select_from(Referral).where(
        Referral.referrer == referrer, Referral.arrived_at > since, Referral.arrived_at <= at))
    if int(recent or 0) >= rules.burst.referrals:
        await flag(session, friend, referrer, code, "burst",
                   f"{recent} friends within {rules.burst.within_hours} h", at)
        return Outcome(True, referrer, "burst")
    return Outcome(True, referrer)
