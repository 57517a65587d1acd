"""Succession reactions: a member left (sweep now), the sweep, a move request, a batch's
follow-up, and WeCom's ``transfer_fail`` callback.

Staff's router marks a deleted member resigned on the same event; this one asks for a sweep
(its own event, so a WeCom failure retries the sweep, not the directory change).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.succession import follow, sweep
from handlers.succession.events import SuccessionFollow, SuccessionMove, SuccessionSweep
from handlers.succession.plan import plan_move
from handlers.succession.rules import Rules, load_rules
from handlers.succession.settings import succession_settings
from scrm.adapters.wecom import events as ev
from scrm.adapters.wecom.api import WeComClient
from scrm.kernel.clock import Clock
from scrm.kernel.config import Settings
from scrm.kernel.dispatch import Router
from scrm.kernel.inbox import Inbox
from scrm.kernel.outbox import Outbox
from scrm.kernel.scheduler import Scheduler

router = Router("succession")
log = logging.getLogger("handlers.succession")


def rules_of(settings: Settings) -> Rules:
    """The rules file as it is now (raises ``PlaybookError``: the event retries, the log says why)."""
    return load_rules(settings.playbook.sop_dir)


@router.on(ev.DeleteUser)
async def on_delete_user(event: ev.DeleteUser, session: AsyncSession, inbox: Inbox, inbox_id: int) -> None:
    """A member left the bank: sweep now, not at the next slot."""
    at = datetime.fromtimestamp(event.create_time, UTC)
    await inbox.add_internal(session, SuccessionSweep(at=at, userid=event.user_id), f"succession:sweep:{inbox_id}")


@router.on(SuccessionSweep)
async def on_sweep(event: SuccessionSweep, session: AsyncSession, wecom: WeComClient, outbox: Outbox,
                   scheduler: Scheduler, settings: Settings, clock: Clock, inbox_id: int) -> None:
    rules = rules_of(settings)
    left = await sweep.read_unassigned(session, wecom)
    await sweep.plan_all(session, outbox, scheduler, settings, rules, left, now=clock.now(), suffix=str(inbox_id))


@router.on(SuccessionMove)
async def on_move(event: SuccessionMove, session: AsyncSession, outbox: Outbox, scheduler: Scheduler,
                  settings: Settings, clock: Clock) -> None:
    rules = rules_of(settings)
    names = await _names(session, event.handover, event.takeover)
    message = event.message or rules.handover_message(names[0], names[1])
    await plan_move(session, outbox, scheduler, batch_id=f"m:{event.request_id}", handover=event.handover,
                    takeover=event.takeover, external_userids=event.external_userids, message=message,
                    origin=event.origin, now=clock.now(),
                    first_follow=timedelta(seconds=succession_settings(settings).first_follow_s))


async def _names(session: AsyncSession, *userids: str) -> list[str]:
    from handlers.contacts.api import member_name

    return [await member_name(session, u) or u for u in userids]


@router.on(SuccessionFollow)
async def on_follow(event: SuccessionFollow, session: AsyncSession, wecom: WeComClient, outbox: Outbox,
                    inbox: Inbox, scheduler: Scheduler, settings: Settings, clock: Clock, inbox_id: int) -> None:
    await follow.follow_batch(session, wecom, outbox, inbox, scheduler, settings, event.batch_id, now=clock.now(),
                              inbox_id=inbox_id)


@router.on(ev.TransferFail)
async def on_transfer_fail(event: ev.TransferFail, session: AsyncSession, outbox: Outbox, inbox: Inbox,
                           settings: Settings, inbox_id: int) -> None:
    at = datetime.fromtimestamp(event.create_time, UTC)
    await follow.on_transfer_fail(session, outbox, inbox, settings, takeover=event.user_id,
                                  external_userid=event.external_user_id, reason=event.fail_reason, at=at,
                                  inbox_id=inbox_id)
