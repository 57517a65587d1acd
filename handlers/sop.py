"""SOP engine reactions: time slots, reminders, task-card buttons, snoozes, escalations, follow-up.

Every handler only plans and writes rows (outbox, sop_* tables, jobs) in the event's
transaction; the outbox sends. Scheduler events carry ``fire_time``; the slot's day is the
fire time's local date, so a replay or a late run plans the same day it was meant for.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from scrm.clock import Clock
from scrm.config import Settings
from scrm.dispatch import Router
from scrm.internal import InternalEvent
from scrm.outbox import Outbox
from scrm.scheduler import Scheduler, TriggerSpec
from scrm.sop import Playbook
from scrm.sop_engine import (
    DUE_KIND,
    ESCALATE_KIND,
    EVENT_KIND,
    FOLLOWUP_KIND,
    REMINDER_KIND,
    SNOOZE_KIND,
    ReminderRunner,
    follow_up,
    next_allowed,
    on_button,
    on_escalate_due,
    on_snooze_due,
    run_slot,
    slot_of,
)
from scrm.wecom.events import TemplateCardEvent

router = Router("sop")
log = logging.getLogger("handlers.sop")

CRM_EVENT = "crm.event"
CRM_DEFERRED = "sop.crm_deferred"  # a CRM event that arrived in quiet hours, replayed after them


def _fire_time(event: InternalEvent) -> datetime | None:
    raw = event.payload.get("fire_time")
    return datetime.fromisoformat(raw) if isinstance(raw, str) else None


@router.on(DUE_KIND)
async def on_sop_due(event: InternalEvent, session: AsyncSession, clock: Clock, settings: Settings,
                     outbox: Outbox, playbook: Playbook | None, scheduler: Scheduler) -> None:
    """A time slot is due: plan it for every group and customer, queue the sends."""
    if playbook is None:
        return
    day, at = slot_of(event.payload, _fire_time(event) or event.at, playbook.policy.timezone)
    outcome = await run_slot(session, playbook, outbox, day, at, now=clock.now(), agent_id=settings.wecom.agent_id,
                             scheduler=scheduler)
    log.info("sop slot %s %s: sent %s, skipped %s", day, at, outcome.sent, outcome.skips)


def _runner(session: AsyncSession, playbook: Playbook, outbox: Outbox, scheduler: Scheduler, clock: Clock,
            settings: Settings) -> ReminderRunner:
    return ReminderRunner(session, playbook, outbox, scheduler, agent_id=settings.wecom.agent_id, now=clock.now())


@router.on(REMINDER_KIND)
async def on_daily_reminder(event: InternalEvent, session: AsyncSession, clock: Clock, settings: Settings,
                            outbox: Outbox, playbook: Playbook | None, scheduler: Scheduler) -> None:
    """Daily scan for one date-based reminder (birthday, risk expiry, maturity, no contact)."""
    if playbook is not None:
        runner = _runner(session, playbook, outbox, scheduler, clock, settings)
        await runner.daily(str(event.payload.get("reminder", "")))


@router.on(EVENT_KIND)
async def on_dated_reminder(event: InternalEvent, session: AsyncSession, clock: Clock, settings: Settings,
                            outbox: Outbox, playbook: Playbook | None, scheduler: Scheduler) -> None:
    if playbook is not None:
        await _runner(session, playbook, outbox, scheduler, clock, settings).on_dated(event.payload)


@router.on(CRM_EVENT, CRM_DEFERRED)
async def on_crm_event(event: InternalEvent, session: AsyncSession, clock: Clock, settings: Settings,
                       outbox: Outbox, playbook: Playbook | None, scheduler: Scheduler) -> None:
    """Key CRM events: immediate cards (outside quiet hours) or dated jobs (maturity)."""
    if playbook is None:
        return
    now = clock.now()
    allowed = next_allowed(playbook, now)
    if allowed > now:
        payload: dict[str, Any] = dict(event.payload)
        key = f"sop.crm_deferred:{payload.get('event_id') or payload.get('crm_id')}:{payload.get('kind')}"
        await scheduler.put_job(session, key[:256], CRM_DEFERRED, TriggerSpec(type="date", at=allowed),
                                payload=payload, misfire_grace_s=86400)
        return
    await _runner(session, playbook, outbox, scheduler, clock, settings).on_crm_event(event.payload)


@router.on(TemplateCardEvent)
async def on_card_button(event: TemplateCardEvent, session: AsyncSession, clock: Clock, settings: Settings,
                         outbox: Outbox, scheduler: Scheduler) -> None:
    await on_button(session, outbox, scheduler, task_id=event.task_id, event_key=event.event_key,
                    userid=event.from_user_name, response_code=event.response_code,
                    agent_id=settings.wecom.agent_id, now=clock.now())


@router.on(SNOOZE_KIND)
async def on_snooze(event: InternalEvent, session: AsyncSession, clock: Clock, settings: Settings,
                    outbox: Outbox, scheduler: Scheduler, playbook: Playbook | None) -> None:
    now = clock.now()
    tz_now = now if playbook is None else next_allowed(playbook, now)
    await on_snooze_due(session, outbox, scheduler, task_id=str(event.payload.get("task_id")),
                        agent_id=settings.wecom.agent_id, now=now, day_of=tz_now)


@router.on(ESCALATE_KIND)
async def on_escalate(event: InternalEvent, session: AsyncSession, clock: Clock, settings: Settings,
                      outbox: Outbox) -> None:
    await on_escalate_due(session, outbox, task_id=str(event.payload.get("task_id")),
                          agent_id=settings.wecom.agent_id, now=clock.now())


@router.on(FOLLOWUP_KIND)
async def on_followup(event: InternalEvent, session: AsyncSession, clock: Clock, outbox: Outbox,
                      wecom: Any) -> None:
    counts = await follow_up(session, outbox, wecom, clock.now())
    if any(counts.values()):
        log.info("mass-send follow-up: %s", counts)
