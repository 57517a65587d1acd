"""A referred friend's CRM event: the referral converts, and both sides are rewarded, once.

Only an event of a ``qualify.on`` kind counts, and only for a friend whose referral still waits
(``pending``, or ``late`` from an event reported earlier that fell after the window). Its time
is the CRM's own (``occurred_at``):

- before the friend arrived: not the referral's doing, ignored;
- after ``within_days``: the referral is ``late``, nobody earns (a later-reported event inside
  the window still converts it);
- otherwise the friend's identity is checked again, now that the CRM may have bound it: a
  friend who turns out to be the referrer (same unionid, or a CRM id of the referrer) is
  ``rejected`` and flagged; else the referral converts. The referrer earns unless their
  rewarded referrals of that local month already reached ``caps.referrer_per_month``
  (``capped``: the friend still earns, ops sees an ``over_cap`` flag).

Every write happens in the event's transaction: the ledger entries (one per source, member and
kind: ``referral:<friend>:referrer`` / ``:friend``), the gift cards (one per key), the referral's
new status. A crash before commit leaves nothing; the replayed event, or the same event again,
finds the referral converted and does nothing. The referrer's code row is locked first so two
friends converting at once cannot both slip under the cap (PostgreSQL; SQLite has one writer).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.contacts.api import Customer, Follow
from handlers.membership.api import Award, grant
from handlers.sop.api import TaskCard, issue_card
from scrm.kernel.inbox import Inbox
from scrm.kernel.outbox import Outbox
from scrm.playbook import Playbook
from scrm.playbook.quiet import quiet_until

from .attribution import flag
from .identity import same_person
from .models import CAPPED, LATE, PENDING, REJECTED, REWARDED, Referral, ReferralCode
from .rules import ReferralRules
from .texts import gift_card


@dataclass(frozen=True)
class Conversion:
    """A CRM event of ``kind`` for contact ``friend`` at ``at`` (the CRM's time); ``crm_id`` the
    CRM customer it names."""

    friend: str
    event_id: str
    kind: str
    crm_id: str
    at: datetime


@dataclass(frozen=True)
class Sinks:
    """Where rewards go: the membership ledger (under ``sop_dir``'s membership.yaml), the
    inbox (level changes), the outbox (gift cards, after the playbook's quiet hours)."""

    sop_dir: Path
    inbox: Inbox | None
    outbox: Outbox
    agent_id: int
    playbook: Playbook

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.playbook.policy.timezone)


async def convert(session: AsyncSession, rules: ReferralRules, sinks: Sinks, event: Conversion, *,
                  now: datetime) -> str | None:
    """Apply ``event`` (see the module's docstring); returns the referral's new status, or None
    when the event changes nothing."""
    if event.kind not in rules.qualify_on:
        return None
    ref = (await session.scalars(select(Referral).where(Referral.friend == event.friend))).first()
    if ref is None or ref.status not in (PENDING, LATE) or event.at < ref.arrived_at:
        return None
    # The referrer's code row: the lock that serialises this referrer's cap.
    await session.execute(select(ReferralCode.code).where(ReferralCode.external_userid == ref.referrer)
                          .with_for_update())
    values: dict[str, object] = {"status_at": now, "conversion": event.event_id, "converted_at": event.at}
    if event.at > ref.arrived_at + timedelta(days=rules.within_days):
        if ref.status == LATE:  # late already: the first late event stays the one on record
            return None
        status = LATE
    elif (why := await same_person(session, event.friend, ref.referrer,
                                   also_crm={event.crm_id} if event.crm_id else set())) is not None:
        status = REJECTED
        await flag(session, ref.friend, ref.referrer, ref.code, why, f"found at {event.kind} {event.event_id}", now)
    else:
        month = event.at.astimezone(sinks.tz).date().replace(day=1)
        paid = await session.scalar(select(func.count()).select_from(Referral).where(
            Referral.referrer == ref.referrer, Referral.referrer_rewarded.is_(True), Referral.reward_month == month))
        cap = rules.referrer_per_month
        referrer_earns = not cap or int(paid or 0) < cap
        status = REWARDED if referrer_earns else CAPPED
        values.update(reward_month=month, referrer_rewarded=referrer_earns)
        if not referrer_earns:
            await flag(session, ref.friend, ref.referrer, ref.code, "over_cap",
                       f"{paid} rewarded in {month:%Y-%m} (cap {cap})", now)
        roles = ("referrer", "friend") if referrer_earns else ("friend",)
        await _reward(session, rules, sinks, ref, roles, event.at, now)
    values["status"] = status
    await session.execute(update(Referral).where(Referral.friend == ref.friend).values(**values))
    return status


async def _reward(session: AsyncSession, rules: ReferralRules, sinks: Sinks, ref: Referral, roles: tuple[str, ...],
                  at: datetime, now: datetime) -> None:
    awards: list[Award] = []
    for role in roles:
        reward = rules.reward(role)
        who = ref.referrer if role == "referrer" else ref.friend
        if reward.points or reward.growth:
            awards.append(Award(who, f"referral_{role}", "推荐有礼" if role == "referrer" else "受邀有礼",
                                reward.points, reward.growth, f"referral:{ref.friend}:{role}", at))
        if reward.gift:
            await _gift(session, sinks, ref, role, who, reward.gift, at.astimezone(sinks.tz).date(), now)
    await grant(session, sinks.sop_dir, awards, tz=sinks.tz, now=now, inbox=sinks.inbox)


async def _gift(session: AsyncSession, sinks: Sinks, ref: Referral, role: str, who: str, gift: str, day: date,
                now: datetime) -> None:
    """A card to the manager who hands the gift over: the friend's, the one they added through
    the code (while that relation lasts); the referrer's, their earliest active one."""
    manager = None
    if role == "friend":
        manager = await session.scalar(select(Follow.userid).where(
            Follow.userid == ref.userid, Follow.external_userid == who, Follow.status == "active"))
    manager = manager or await session.scalar(select(Follow.userid).where(
        Follow.external_userid == who, Follow.status == "active").order_by(Follow.created_at, Follow.userid).limit(1))
    if manager is None:
        return
    names = dict((await session.execute(select(Customer.external_userid, Customer.name).where(
        Customer.external_userid.in_((ref.referrer, ref.friend))))).all())
    title, text = gift_card(role, names.get(ref.referrer) or ref.referrer, names.get(ref.friend) or ref.friend, gift)
    card = TaskCard(key=f"referral:{ref.friend}:{role}", userid=manager, target=who, source="referral", title=title,
                    text=text, day=day, buttons=("done",))
    # A CRM batch lands at night: the manager reads the card when the quiet hours end.
    await issue_card(session, sinks.outbox, None, card, agent_id=sinks.agent_id, now=now,
                     not_before=quiet_until(sinks.playbook, now))
