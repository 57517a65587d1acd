"""Membership reactions: behaviours the service already sees earn points and growth (a CRM event
of a kind a behaviour is ``on``, a customer opening a tracked material, a customer joining a
customer group), the nightly lapse and review, and a level change (the customer's timeline; an
upgrade puts a card with the level's rights before the manager and, through the manager, one
message with them to the customer).

A broken sop/membership.yaml must not hold up the CRM, radar or groups work of the same event
(one transaction per event): the earning is logged and dropped, and ``scrm membership check``
names the line. The nightly run, which is this feature's alone, retries instead.
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.compliance.api import trail_about
from handlers.contacts.api import Customer, Follow
from handlers.crm.api import EVENT_KINDS, Binding, CrmKeyEvent
from handlers.radar.api import RadarClickEvent
from handlers.sop.api import TaskCard, issue_card
from handlers.tags.api import FollowTag, lookup
from handlers.timeline.api import note
from scrm.adapters.wecom import events as ev
from scrm.kernel.clock import Clock
from scrm.kernel.config import Settings
from scrm.kernel.dispatch import Router
from scrm.kernel.inbox import Inbox
from scrm.kernel.outbox import Outbox
from scrm.playbook import Playbook
from scrm.playbook.issues import PlaybookError
from scrm.playbook.quiet import next_allowed

from .events import LevelChanged, MembershipNightly
from .ledger import Earning, post
from .nightly import run_chunk
from .redeem import sweep
from .rules import Level, Membership, load_current
from .settings import membership_settings
from .texts import upgrade_card, upgrade_message

router = Router("membership")
log = logging.getLogger("handlers.membership")


def _rules(settings: Settings) -> Membership | None:
    try:
        return load_current(settings.playbook.sop_dir, EVENT_KINDS)
    except PlaybookError as exc:
        log.error("sop/membership.yaml has %d problem(s), nothing earned: %s", len(exc.errors), exc.errors[0])
        return None


async def _earn(session: AsyncSession, settings: Settings, playbook: Playbook, inbox: Inbox, clock: Clock,
                on: str, earnings: list[tuple[str, str, datetime]]) -> None:
    """Post (member, source, at) of the behaviour that is ``on`` this, if the YAML has one."""
    rules = _rules(settings)
    b = rules.behaviour_on(on) if rules else None
    if rules is None or b is None or not earnings:
        return
    await post(session, rules, [Earning(c, b.name, s, at) for c, s, at in earnings],
               tz=ZoneInfo(playbook.policy.timezone), now=clock.now(), inbox=inbox)


@router.on(CrmKeyEvent)
async def on_crm_event(event: CrmKeyEvent, session: AsyncSession, inbox: Inbox, clock: Clock, settings: Settings,
                       playbook: Playbook) -> None:
    """A CRM event (a purchase, a payroll credit, a branch visit …) of the member bound to it,
    as of the CRM's own time (never later than now: a future date must not dodge today's cap)."""
    ext = event.external_userid or await session.scalar(
        select(Binding.external_userid).where(Binding.crm_id == event.crm_id))
    ext = ext or await session.scalar(select(Customer.external_userid).where(Customer.crm_id == event.crm_id))
    if ext:
        at = min(event.occurred_at.astimezone(UTC), clock.now())
        await _earn(session, settings, playbook, inbox, clock, f"crm.{event.event_kind}",
                    [(ext, f"crm:{event.event_id}", at)])


@router.on(RadarClickEvent)
async def on_radar_open(event: RadarClickEvent, session: AsyncSession, inbox: Inbox, clock: Clock,
                        settings: Settings, playbook: Playbook) -> None:
    """A known customer opened a material: once per material (opening it again earns nothing)."""
    if event.customer:
        await _earn(session, settings, playbook, inbox, clock, "radar.open",
                    [(event.customer, f"radar.open:{event.material}", event.at)])


@router.on(ev.ExternalChatUpdate, when=lambda e: e.update_detail == "add_member")
async def on_group_join(event: ev.ExternalChatUpdate, session: AsyncSession, inbox: Inbox, clock: Clock,
                        settings: Settings, playbook: Playbook) -> None:
    """Customers (not staff) who joined a customer group: once per group."""
    joined = [m for m in event.mem_change_list if m]
    if not joined:
        return
    known = set((await session.scalars(select(Customer.external_userid)
                                       .where(Customer.external_userid.in_(joined)))).all())
    at = datetime.fromtimestamp(event.create_time, UTC)
    await _earn(session, settings, playbook, inbox, clock, "group.join",
                [(m, f"group.join:{event.chat_id}", at) for m in joined if m in known])


@router.on(MembershipNightly)
async def on_nightly(event: MembershipNightly, session: AsyncSession, inbox: Inbox, outbox: Outbox, clock: Clock,
                     settings: Settings, playbook: Playbook) -> None:
    """Lapse and review one chunk, then queue the next; the first chunk also cancels stale
    reservations (:func:`.redeem.sweep`). A broken file raises: the event retries and the log
    names the line."""
    rules = load_current(settings.playbook.sop_dir, EVENT_KINDS)
    now = clock.now()
    if not event.cursor:
        swept = await sweep(session, outbox, now)
        if swept:
            log.warning("membership: %d stale redemption(s) cancelled, points given back", swept)
    tz = ZoneInfo(playbook.policy.timezone)
    day = date.fromisoformat(event.day) if event.day else now.astimezone(tz).date()
    chunk = await run_chunk(session, inbox, rules, day=day, now=now, tz=tz, cursor=event.cursor,
                            limit=membership_settings(settings).chunk)
    log.info("membership %s after %r: %d members, %d points lapsed, %d levels down", day, event.cursor,
             chunk.scanned, chunk.lapsed, len(chunk.changes))
    if chunk.cursor is not None:
        nxt = MembershipNightly(at=now, cursor=chunk.cursor, day=day.isoformat())
        await inbox.add_internal(session, nxt, f"membership.nightly:{day.isoformat()}:{chunk.cursor}")


ADD_MSG_TEMPLATE = "externalcontact/add_msg_template"


async def _message_customer(session: AsyncSession, inbox_id: int, outbox: Outbox, playbook: Playbook, *,
                            event: LevelChanged, manager: str, name: str, level: Level, now: datetime) -> None:
    """The customer's upgrade message, sent by ``manager`` (one per crossing: keyed by its cause),
    under the contact policy: deferred past the quiet hours, skipped — and noted on the
    customer's timeline — when the customer opted out."""
    opt_out = playbook.policy.opt_out_tag
    ids = list((await lookup(session, [opt_out])).values())
    if ids and await session.scalar(select(FollowTag.tag_id).where(FollowTag.external_userid == event.external_userid,
                                                                   FollowTag.tag_id.in_(ids)).limit(1)):
        await note(session, inbox_id, "customer", event.external_userid, event.at, "membership.message_skipped",
                   {"level": event.level, "reason": f"opt-out tag {opt_out}"})
        return
    body = {"sender": manager, "chat_type": "single", "external_userid": [event.external_userid],
            "text": {"content": upgrade_message(name, level)}, "attachments": []}
    trail = trail_about("membership", sender=manager, audience=[event.external_userid],
                        decisions=[f"membership upgrade to {level.name}", "outside quiet hours", "not opted out"])
    delay = (next_allowed(playbook, now) - now).total_seconds()
    await outbox.add(session, f"membership.upgrade:{event.external_userid}:{event.cause}", ADD_MSG_TEMPLATE, body,
                     delay_s=delay, about={"trail": trail})


@router.on(LevelChanged)
async def on_level_changed(event: LevelChanged, session: AsyncSession, inbox_id: int, outbox: Outbox, clock: Clock,
                           settings: Settings, playbook: Playbook) -> None:
    """On the customer's timeline; an upgrade is also one card to the customer's manager (the
    earliest active relation), with the new level's rights, and one message to the customer
    through that manager (:func:`_message_customer`)."""
    rules = load_current(settings.playbook.sop_dir, EVENT_KINDS)
    level, previous = rules.level(event.level), rules.level(event.previous)
    label = level.label if level else event.level
    before = previous.label if previous else event.previous
    await note(session, inbox_id, "customer", event.external_userid, event.at, "membership.level",
               {"level": event.level, "label": label, "previous": event.previous, "previous_label": before,
                "direction": event.direction})
    if event.direction != "up" or level is None:
        return
    manager = await session.scalar(select(Follow.userid).where(Follow.external_userid == event.external_userid,
                                                               Follow.status == "active")
                                   .order_by(Follow.created_at, Follow.userid).limit(1))
    if manager is None:
        return
    name = await session.scalar(select(Customer.name).where(Customer.external_userid == event.external_userid))
    title, text = upgrade_card(name or event.external_userid, before, level)
    card = TaskCard(key=f"membership:{event.external_userid}:{event.cause}", userid=manager,
                    target=event.external_userid, source="membership", title=title, text=text,
                    day=date.fromisoformat(event.day), buttons=("done",))
    await issue_card(session, outbox, None, card, agent_id=settings.wecom.agent_id, now=clock.now())
    await _message_customer(session, inbox_id, outbox, playbook, event=event, manager=manager,
                            name=name or "您", level=level, now=clock.now())
