"""Redemption: points spent through the bank's fulfilment system, reserve → confirm / cancel.

A request (``scrm membership redeem``, or :func:`request_redemption` from the sidebar or the
console) does, in one transaction:

- reserve: the member's account row is locked (two redemptions of one member queue, they never
  both see the same balance), the spendable balance must cover the points, and two entries move
  them: ``points -N`` and ``reserved +N`` (reason ``reserve``). The spendable balance therefore
  never goes negative (the account's check constraint backs this up);
- the call: one ``crm.webhook`` outbox action (the CRM's own signed transport and config,
  :mod:`handlers.crm.webhook`) with ``{"type": "redemption.reserve", ...}``, keyed
  ``membership.redeem:<id>``, which the CRM receives as ``X-Scrm-Idempotency-Key``, with a
  deadline (``not_after``) of ``[membership] redeem_timeout_s``.

The answer settles it exactly once (a conditional update of the redemption's state, and the
ledger's unique ``(source, member, kind)`` behind it):

- 2xx: the order is placed — confirm: ``reserved -N`` (reason ``confirm``), the points are spent;
- 4xx (not 408/429): refused — cancel: ``reserved -N`` and ``points +N`` (reasons ``cancel`` /
  ``release``);
- anything else (5xx, a timeout, a dropped connection): retried with the same key, so a CRM that
  did place the order answers it again instead of placing a second one;
- no answer by the deadline: the outbox gives up (``failed``) and the same cancel runs; the CRM
  is then told ``{"type": "redemption.cancel", ...}`` so an order it placed without its answer
  reaching us is voided rather than fulfilled for points given back.

Confirm runs in the transaction that records the action ``sent`` (an outbox sent hook), cancel in
the one that records it ``failed`` (a failure hook): the outcome and the ledger never disagree.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from handlers.contacts.api import Customer
from handlers.crm.api import WEBHOOK_KIND, Binding
from scrm.adapters.db.engine import dialect_of, insert_ignore, table_of
from scrm.kernel.models import OUTBOX_UNFINISHED, OutboxAction
from scrm.kernel.outbox import PRIORITY_INTERACTIVE, Outbox

from .ledger import lock_accounts
from .models import (
    CANCEL,
    CONFIRM,
    POINTS,
    RELEASE,
    RESERVE,
    RESERVED,
    MembershipAccount,
    MembershipEntry,
    MembershipRedemption,
)
from .rules import Membership

# The outbox "api" of a reservation call: what its sent and failure hooks are registered under
# (the action's kind is the CRM's crm.webhook, whose executor reads only the payload's body).
REDEEM_API = "membership.redeem"
REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
MAX_POINTS = 10_000_000


class RedemptionRefused(Exception):
    """A request that cannot be reserved (one line, for the CLI's exit 2 or an HTTP 4xx)."""


@dataclass(frozen=True)
class Reservation:
    """A redemption as the request left it (``repeat``: the same request id was seen before)."""

    id: str
    external_userid: str
    item: str
    points: int
    state: str
    balance: int  # spendable points after it
    reserved: int  # points held by pending redemptions after it
    repeat: bool = False


def action_key(redemption_id: str) -> str:
    return f"{REDEEM_API}:{redemption_id}"


def source_of(redemption_id: str) -> str:
    """The ledger source of the reservation's entries; the settlement's is ``…:settle``."""
    return f"redeem:{redemption_id}"


async def _crm_id(session: AsyncSession, external_userid: str) -> str | None:
    return (await session.scalar(select(Customer.crm_id).where(Customer.external_userid == external_userid))
            or await session.scalar(select(Binding.crm_id).where(Binding.external_userid == external_userid)))


async def request_redemption(session: AsyncSession, outbox: Outbox, rules: Membership, *, request_id: str,
                             external_userid: str, item: str, points: int, now: datetime, tz: ZoneInfo,
                             timeout_s: float) -> Reservation:
    """Reserve ``points`` of the member for ``item`` and queue the fulfilment call, in the caller's
    transaction; the same ``request_id`` again returns the first request's redemption unchanged.
    Raises :class:`RedemptionRefused` when it cannot be reserved."""
    if not REQUEST_ID.match(request_id):
        raise RedemptionRefused(f"request id must be 1-64 letters, digits or ._:- (got {request_id!r})")
    if not 0 < points <= MAX_POINTS:
        raise RedemptionRefused(f"points must be a whole number 1..{MAX_POINTS}, got {points}")
    if not item.strip() or len(item) > 128:
        raise RedemptionRefused("item must be a non-empty name of at most 128 characters")
    table = table_of(MembershipRedemption)
    known = (await session.execute(select(table).where(table.c.id == request_id))).first()
    if known is None and await session.scalar(
            select(MembershipAccount.external_userid).where(MembershipAccount.external_userid == external_userid)
    ) is None:
        raise RedemptionRefused(f"{external_userid} is not a member (has earned nothing)")
    accounts = await lock_accounts(session, [external_userid], rules, now, tz, now=now)
    acct = accounts[external_userid]
    # Read again under the lock: a concurrent request with the same id has committed by now.
    known = (await session.execute(select(table).where(table.c.id == request_id))).first()
    if known is not None:
        if (known.external_userid, known.item, known.points) != (external_userid, item, points):
            raise RedemptionRefused(f"request id {request_id} was already used for another redemption")
        return Reservation(known.id, known.external_userid, known.item, known.points, known.state,
                           int(acct["points"]), int(acct["reserved"]), repeat=True)
    crm_id = await _crm_id(session, external_userid)
    if not crm_id:
        raise RedemptionRefused(f"{external_userid} is not linked to a CRM customer: the bank cannot fulfil it")
    if acct["points"] < points:
        raise RedemptionRefused(f"{external_userid} has {acct['points']} spendable point(s), {points} asked")
    deadline = now + timedelta(seconds=timeout_s)
    await session.execute(table.insert(), {
        "id": request_id, "external_userid": external_userid, "crm_id": crm_id, "item": item, "points": points,
        "state": "reserved", "reason": "", "reserved_at": now, "deadline": deadline, "settled_at": None})
    day = now.astimezone(tz).date()
    base = {"external_userid": external_userid, "reason": RESERVE, "behaviour": "", "source": source_of(request_id),
            "at": now, "day": day, "expires_at": None}
    await session.execute(table_of(MembershipEntry).insert(), [{**base, "kind": POINTS, "amount": -points},
                                                               {**base, "kind": RESERVED, "amount": points}])
    acct_t = table_of(MembershipAccount)
    await session.execute(update(acct_t).where(acct_t.c.external_userid == external_userid)
                          .values(points=acct_t.c.points - points, reserved=acct_t.c.reserved + points,
                                  updated_at=now))
    body = {"type": "redemption.reserve", "redemption_id": request_id, "crm_id": crm_id,
            "external_userid": external_userid, "item": item, "points": points, "at": now.isoformat(),
            "deadline": deadline.isoformat()}
    await outbox.add_action(session, action_key(request_id), WEBHOOK_KIND,
                            {"api": REDEEM_API, "body": body, "redemption": request_id},
                            priority=PRIORITY_INTERACTIVE, lane=f"crm:{crm_id}", not_after=deadline)
    return Reservation(request_id, external_userid, item, points, "reserved", int(acct["points"]) - points,
                       int(acct["reserved"]) + points)


async def settle(db: AsyncSession | AsyncConnection, redemption_id: str, *, confirmed: bool, at: datetime,
                 reason: str = "") -> bool:
    """Confirm (points spent) or cancel (points back) a reserved redemption, once: False when it
    was settled already (a second answer, a replay)."""
    table = table_of(MembershipRedemption)
    state = "confirmed" if confirmed else "cancelled"
    res = await db.execute(update(table).where(table.c.id == redemption_id, table.c.state == "reserved")
                           .values(state=state, settled_at=at, reason=reason[:300]))
    if res.rowcount != 1:  # type: ignore[attr-defined]
        return False
    row = (await db.execute(select(table.c.external_userid, table.c.points, table.c.reserved_at)
                            .where(table.c.id == redemption_id))).one()
    ext, points = row.external_userid, int(row.points)
    day = row.reserved_at.date()  # the settlement's day is never counted by a cap: any fixed day does
    base = {"external_userid": ext, "behaviour": "", "source": f"{source_of(redemption_id)}:settle", "at": at,
            "day": day, "expires_at": None}
    entries = [{**base, "kind": RESERVED, "amount": -points, "reason": CONFIRM if confirmed else CANCEL}]
    if not confirmed:
        entries.append({**base, "kind": POINTS, "amount": points, "reason": RELEASE})
    await db.execute(insert_ignore(dialect_of(db), table_of(MembershipEntry), ["source", "external_userid", "kind"]),
                     entries)
    acct = table_of(MembershipAccount)
    await db.execute(update(acct).where(acct.c.external_userid == ext)
                     .values(reserved=acct.c.reserved - points, updated_at=at,
                             **({} if confirmed else {"points": acct.c.points + points})))
    return True


async def on_answered(db: AsyncSession | AsyncConnection, sent: Sequence[tuple[Mapping[str, Any], datetime]]) -> None:
    """The outbox's sent hook (the calls recorded sent together): the fulfilment system accepted
    each reservation."""
    for row, sent_at in sent:
        await settle(db, str(row["payload"]["redemption"]), confirmed=True, at=sent_at)


async def on_refused(outbox: Outbox, session: AsyncSession, row: Mapping[str, Any], error: str) -> None:
    """The outbox's failure hook: refused, or never answered by the deadline. The points go back
    and the CRM is told to void the reservation (an order it placed without our hearing of it)."""
    payload = row["payload"]
    redemption_id = str(payload["redemption"])
    now = outbox.clock.now()
    if not await settle(session, redemption_id, confirmed=False, at=now, reason=error):
        return
    reserve = payload["body"]
    body = {"type": "redemption.cancel", "redemption_id": redemption_id, "crm_id": reserve["crm_id"],
            "external_userid": reserve["external_userid"], "at": now.isoformat(), "reason": error[:300]}
    await outbox.add_action(session, f"{action_key(redemption_id)}:cancel", WEBHOOK_KIND, {"body": body},
                            priority=PRIORITY_INTERACTIVE, lane=row["lane"])


async def sweep(session: AsyncSession, outbox: Outbox, now: datetime) -> int:
    """Cancel reservations past their deadline whose call will never be answered: an operator
    cancelled it (``scrm outbox cancel``) or it failed without its hook settling it. A call still
    unfinished is left to the outbox (its deadline fails it, and the hook cancels). Returns how
    many were cancelled (the nightly run calls this)."""
    red, box = table_of(MembershipRedemption), table_of(OutboxAction)
    stale = (await session.execute(
        select(red.c.id, red.c.crm_id, red.c.external_userid).where(red.c.state == "reserved", red.c.deadline < now)
        .order_by(red.c.id))).all()
    if not stale:
        return 0
    open_keys = set((await session.scalars(
        select(box.c.idempotency_key).where(box.c.idempotency_key.in_([action_key(r.id) for r in stale]),
                                            box.c.status.in_(OUTBOX_UNFINISHED)))).all())
    done = 0
    for r in stale:
        if action_key(r.id) in open_keys:
            continue
        reason = "no answer by the deadline; the call was cancelled or failed unsettled"
        if await settle(session, r.id, confirmed=False, at=now, reason=reason):
            body = {"type": "redemption.cancel", "redemption_id": r.id, "crm_id": r.crm_id,
                    "external_userid": r.external_userid, "at": now.isoformat(), "reason": reason}
            await outbox.add_action(session, f"{action_key(r.id)}:cancel", WEBHOOK_KIND, {"body": body},
                                    priority=PRIORITY_INTERACTIVE, lane=f"crm:{r.crm_id}")
            done += 1
    return done


def install(outbox: Outbox) -> None:
    """Register the hooks that settle a reservation with the outcome of its call."""
    hooks = outbox.sent_hooks.setdefault(REDEEM_API, [])
    if on_answered not in hooks:
        hooks.append(on_answered)
    outbox.failure_hooks[REDEEM_API] = on_refused
