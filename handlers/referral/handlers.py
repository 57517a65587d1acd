"""Referral reactions: a contact arriving through a referral code's contact way is attributed
(or flagged, :mod:`.attribution`); a referred friend's CRM event converts the referral and
rewards both sides once (:mod:`.rewards`).

Runs after contacts (the friend's customer row, with its unionid, and the relation exist) and
after the CRM (its binding of the event's customer is written). A broken sop/referral.yaml must
not hold up the contacts or CRM work of the same event: attribution goes on with the defaults
(it rewards nobody), a conversion waits — the event retries, so the reward is paid once the file
is mended — and ``scrm sop validate`` names the line.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.contacts.api import Customer
from handlers.crm.api import EVENT_KINDS, Binding, CrmKeyEvent
from handlers.timeline.api import note
from scrm.adapters.wecom import events as ev
from scrm.kernel.clock import Clock
from scrm.kernel.config import Settings
from scrm.kernel.dispatch import Router
from scrm.kernel.inbox import Inbox
from scrm.kernel.outbox import Outbox
from scrm.playbook import Playbook
from scrm.playbook.issues import PlaybookError

from .attribution import Arrival, attribute
from .codes import code_in
from .rewards import Conversion, Sinks, convert
from .rules import ReferralRules, load_current

router = Router("referral")
log = logging.getLogger("handlers.referral")


def _through_code(event: ev.AddExternalContact | ev.AddHalfExternalContact) -> bool:
    return code_in(event.state) is not None


@router.on(ev.AddExternalContact, ev.AddHalfExternalContact, when=_through_code)
async def on_arrival(event: ev.AddExternalContact | ev.AddHalfExternalContact, session: AsyncSession,
                     settings: Settings, inbox_id: int) -> None:
    """A contact added a manager through a referral code's QR code."""
    try:
        rules = load_current(settings.playbook.sop_dir, EVENT_KINDS)
    except PlaybookError as exc:
        log.error("sop/referral.yaml has %d problem(s); attributing with the defaults: %s", len(exc.errors),
                  exc.errors[0])
        rules = ReferralRules()
    code = code_in(event.state) or ""
    at = datetime.fromtimestamp(event.create_time, UTC)
    outcome = await attribute(session, rules, Arrival(event.external_user_id, event.user_id, code, at))
    kind = "referral.attributed" if outcome.attributed else "referral.refused"
    await note(session, inbox_id, "customer", event.external_user_id, at, kind,
               {"referrer": outcome.referrer, "code": code, "reason": outcome.reason, "userid": event.user_id})
    if not outcome.attributed:
        log.warning("referral refused (%s): code %s", outcome.reason, code, extra={"userid": event.user_id})


@router.on(CrmKeyEvent)
async def on_crm_event(event: CrmKeyEvent, session: AsyncSession, inbox: Inbox, outbox: Outbox, clock: Clock,
                       settings: Settings, playbook: Playbook, inbox_id: int) -> None:
    """A CRM event of a customer who may be a referred friend (as of the CRM's own time); what
    it did to the referral goes on the friend's timeline."""
    rules = load_current(settings.playbook.sop_dir, EVENT_KINDS)  # broken: raises, the event retries
    if event.event_kind not in rules.qualify_on:
        return
    friend = event.external_userid or await session.scalar(
        select(Binding.external_userid).where(Binding.crm_id == event.crm_id))
    friend = friend or await session.scalar(select(Customer.external_userid).where(Customer.crm_id == event.crm_id))
    if not friend:
        return
    sinks = Sinks(settings.playbook.sop_dir, inbox, outbox, settings.wecom.agent_id, playbook)
    conversion = Conversion(friend, event.event_id, event.event_kind, event.crm_id, event.occurred_at.astimezone(UTC))
    status = await convert(session, rules, sinks, conversion, now=clock.now())
    if status is not None:
        log.info("referral of %s: %s on %s %s", friend, status, event.event_kind, event.event_id)
        await note(session, inbox_id, "customer", friend, conversion.at, f"referral.{status}",
                   {"event": event.event_id, "kind": event.event_kind})
