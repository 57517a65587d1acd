"""SOP engine reactions: time slots, reminders, task-card buttons, snoozes, escalations, follow-up.

Every handler only plans and writes rows (outbox, sop_* tables, jobs) in the event's
transaction; the outbox sends. Its events are typed (``handlers/sop/events.py``; the CRM's key
events come through ``handlers.crm.api``). Scheduler events carry ``fire_time``; the slot's day is the
fire time's local date, so a replay or a late run plans the same day it was meant for.

Nothing reaches a customer or a manager in quiet hours, even when a job runs late into them:
a slot's pushes are skipped with the reason (their moment has passed) and its task cards are
carried over; a card, snooze, escalation or reminder that falls due in quiet hours waits for
their end.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import AsyncIterable, AsyncIterator
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.campaigns.api import follow_moment
from handlers.crm.api import CrmKeyEvent
from handlers.radar.api import LinkMaker
from handlers.sop.compliance_notice import send_notice
from handlers.sop.engine import (
    Executor,
    Planned,
    ReminderRunner,
    Skip,
    SlotPlanner,
    follow_up,
    local_day,
    next_allowed,
    on_button,
    on_carry_due,
    on_escalate_due,
    on_snooze_due,
    slot_of,
)
from handlers.sop.events import (
    CrmKeyDeferred,
    SopCarryDue,
    SopComplianceNotice,
    SopDatedReminder,
    SopDue,
    SopEscalateDue,
    SopFollowup,
    SopMomentPoll,
    SopReminderScan,
    SopSnoozeDue,
)
from handlers.sop.model import Decision
from handlers.sop.reminders import CRM_KINDS
from scrm.adapters.wecom.events import TemplateCardEvent
from scrm.kernel.clock import Clock
from scrm.kernel.config import Settings
from scrm.kernel.dispatch import Router
from scrm.kernel.events import Scheduled
from scrm.kernel.outbox import Outbox
from scrm.kernel.scheduler import Scheduler, TriggerSpec
from scrm.playbook import Playbook

router = Router("sop")
log = logging.getLogger("handlers.sop")

def _job_payload(event: Scheduled) -> dict[str, Any]:
    """The stored payload of ``event`` without what its firing added (``job_key``, ``fire_time``)."""
    return {k: v for k, v in event.stored().payload.items() if k not in ("job_key", "fire_time")}


async def _after_quiet(event: Scheduled, session: AsyncSession, scheduler: Scheduler,
                       playbook: Playbook, now: datetime) -> bool:
    """In quiet hours: fire the same event again when they end (True); otherwise False."""
    if next_allowed(playbook, now) <= now:
        return False
    payload = _job_payload(event)
    digest = hashlib.sha1(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:20]
    # Not under a prefix register_jobs manages ("sop.reminders:" …): a reload must not disable it.
    await scheduler.put_job(session, f"sop.after-quiet:{event.kind}:{digest}", type(event),
                            TriggerSpec(type="date", at=next_allowed(playbook, now)), payload=payload,
                            misfire_grace_s=86400)
    return True


async def _in_quiet_hours(decisions: AsyncIterable[Decision], reason: str) -> AsyncIterator[Decision]:
    """A slot run late into quiet hours: pushes are skipped, task cards carried over."""
    async for d in decisions:
        if isinstance(d, Planned) and d.kind == "task":
            yield Skip(d.source, d.step, d.target, d.day, reason, carry=d)
        elif isinstance(d, Planned) and d.kind == "moments":  # the post's customers, not its target
            for customer, manager in d.audience:
                yield Skip(d.source, d.step, customer, d.day, reason, sender=manager)
        elif isinstance(d, Planned) and d.kind != "tag":
            yield Skip(d.source, d.step, d.target, d.day, reason)
        else:
            yield d


@router.on(SopDue)
async def on_sop_due(event: SopDue, session: AsyncSession, clock: Clock, settings: Settings,
                     outbox: Outbox, playbook: Playbook, scheduler: Scheduler) -> None:
    """A time slot is due: plan it for every group and customer, queue the sends."""
    now = clock.now()
    day, at = slot_of(event, playbook.policy.timezone)
    executor = Executor(session, outbox, playbook, agent_id=settings.wecom.agent_id, now=now, scheduler=scheduler,
                        links=LinkMaker(settings))
    decisions: AsyncIterable[Decision] = SlotPlanner(playbook, day, at, now).run(session)
    if next_allowed(playbook, now) > now:
        local = now.astimezone(ZoneInfo(playbook.policy.timezone))
        decisions = _in_quiet_hours(decisions, f"quiet hours {playbook.policy.quiet_hours}: slot {at:%H:%M} "
                                               f"ran late at {local:%H:%M}")
    outcome = await executor.run(decisions)
    log.info("sop slot %s %s: sent %s, skipped %s, carried over %s", day, at, outcome.sent, outcome.skips,
             outcome.deferred)


def _runner(session: AsyncSession, playbook: Playbook, outbox: Outbox, scheduler: Scheduler, clock: Clock,
            settings: Settings) -> ReminderRunner:
    return ReminderRunner(session, playbook, outbox, scheduler, agent_id=settings.wecom.agent_id, now=clock.now(),
                          links=LinkMaker(settings))


@router.on(SopReminderScan)
async def on_daily_reminder(event: SopReminderScan, session: AsyncSession, clock: Clock, settings: Settings,
                            outbox: Outbox, playbook: Playbook, scheduler: Scheduler) -> None:
    """Daily scan for one date-based reminder (birthday, risk expiry, maturity, no contact)."""
    if not await _after_quiet(event, session, scheduler, playbook, clock.now()):
        runner = _runner(session, playbook, outbox, scheduler, clock, settings)
        await runner.daily(event.reminder)


@router.on(SopDatedReminder)
async def on_dated_reminder(event: SopDatedReminder, session: AsyncSession, clock: Clock, settings: Settings,
                            outbox: Outbox, playbook: Playbook, scheduler: Scheduler) -> None:
    if not await _after_quiet(event, session, scheduler, playbook, clock.now()):
        await _runner(session, playbook, outbox, scheduler, clock, settings).on_dated(event)


@router.on(CrmKeyEvent, CrmKeyDeferred)
async def on_crm_event(event: CrmKeyEvent, session: AsyncSession, clock: Clock, settings: Settings,
                       outbox: Outbox, playbook: Playbook, scheduler: Scheduler) -> None:
    """Key CRM events: immediate cards (outside quiet hours) or dated jobs (maturity)."""
    if event.event_kind not in CRM_KINDS:
        return  # an interaction (call, visit): contact recorded by the CRM feature, no card
    now = clock.now()
    allowed = next_allowed(playbook, now)
    if allowed > now:
        # The same fields, fired again as a CrmKeyDeferred when the quiet hours end.
        payload = _job_payload(event) if isinstance(event, CrmKeyDeferred) else event.stored().payload
        key = f"sop.crm_deferred:{event.event_id or event.crm_id}:{event.event_kind}"
        await scheduler.put_job(session, key[:256], CrmKeyDeferred, TriggerSpec(type="date", at=allowed),
                                payload=payload, misfire_grace_s=86400)
        return
    await _runner(session, playbook, outbox, scheduler, clock, settings).on_crm_event(event)


@router.on(TemplateCardEvent)
async def on_card_button(event: TemplateCardEvent, session: AsyncSession, clock: Clock, settings: Settings,
                         outbox: Outbox, scheduler: Scheduler) -> None:
    await on_button(session, outbox, scheduler, task_id=event.task_id, event_key=event.event_key,
                    userid=event.from_user_name, response_code=event.response_code,
                    agent_id=settings.wecom.agent_id, now=clock.now())


@router.on(SopSnoozeDue)
async def on_snooze(event: SopSnoozeDue, session: AsyncSession, clock: Clock, settings: Settings,
                    outbox: Outbox, scheduler: Scheduler, playbook: Playbook) -> None:
    now = clock.now()
    if await _after_quiet(event, session, scheduler, playbook, now):
        return
    day = local_day(playbook, now)
    await on_snooze_due(session, outbox, scheduler, task_id=event.task_id,
                        agent_id=settings.wecom.agent_id, now=now, day=day)


@router.on(SopEscalateDue)
async def on_escalate(event: SopEscalateDue, session: AsyncSession, clock: Clock, settings: Settings,
                      outbox: Outbox, scheduler: Scheduler, playbook: Playbook) -> None:
    if not await _after_quiet(event, session, scheduler, playbook, clock.now()):
        await on_escalate_due(session, outbox, task_id=event.task_id,
                              agent_id=settings.wecom.agent_id, now=clock.now())


@router.on(SopCarryDue)
async def on_carry(event: SopCarryDue, session: AsyncSession, clock: Clock, settings: Settings,
                   outbox: Outbox, scheduler: Scheduler, playbook: Playbook) -> None:
    """A card carried over the daily task limit: its workday has begun."""
    if not await _after_quiet(event, session, scheduler, playbook, clock.now()):
        await on_carry_due(session, outbox, scheduler, task_id=event.task_id,
                           agent_id=settings.wecom.agent_id, now=clock.now())


@router.on(SopComplianceNotice)
async def on_compliance_notice(event: SopComplianceNotice, session: AsyncSession, clock: Clock, outbox: Outbox,
                               settings: Settings, playbook: Playbook) -> None:
    """Once a day: tell the ops contacts which materials in use are (or soon are) skipped."""
    at = event.fire_time or clock.now()
    await send_notice(session, outbox, settings, playbook, local_day(playbook, at))


@router.on(SopMomentPoll)
async def on_moment_poll(event: SopMomentPoll, session: AsyncSession, clock: Clock, wecom: Any,
                         scheduler: Scheduler) -> None:
    """Follow a campaign's Moments post up; poll again while it is not finished."""
    again = await follow_moment(session, wecom, event.key, clock.now())
    if again is not None:
        await scheduler.put_job(session, event.job_key or f"sop.moment:{event.key}"[:256], SopMomentPoll,
                                TriggerSpec(type="date", at=again), payload={"key": event.key},
                                misfire_grace_s=86400)


@router.on(SopFollowup)
async def on_followup(event: SopFollowup, session: AsyncSession, clock: Clock, outbox: Outbox,
                      wecom: Any, playbook: Playbook) -> None:
    now = clock.now()
    remind = next_allowed(playbook, now) <= now
    counts = await follow_up(session, outbox, wecom, now, remind=remind)
    if any(counts.values()):
        log.info("mass-send follow-up: %s", counts)
