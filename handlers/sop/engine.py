"""The SOP engine: plans each time slot of the playbook against the database and sends.

Public API::

    run_slot(session, pb, outbox, day, at, now=..., agent_id=..., scheduler=None) -> Outcome
    SlotPlanner(pb, day, at, now).run(session)        # decisions only (plans, previews)
    register_jobs(session, scheduler, pb)              # daily sop.due jobs per HH:MM, reminders
    ReminderRunner(...)                                # key-event reminders (CRM, daily scans)
    on_button / on_snooze_due / on_escalate_due        # task cards after they were sent
    on_carry_due                                       # cards carried over the daily task limit
    MediaPreparer                                      # outbox: media ids filled in at send time
    follow_up(session, outbox, wecom, now)             # remind unconfirmed mass sends

Everything writes inside the caller's transaction; outbox keys make every send happen once.
"""

from __future__ import annotations

from datetime import date, datetime, time

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.radar.api import LinkMaker
from scrm.kernel.outbox import Outbox
from scrm.kernel.scheduler import Scheduler
from scrm.playbook import Playbook
from scrm.playbook.quiet import local_day, next_allowed

from .cards import TaskCard, defer_card, issue_card
from .executor import Executor, Outcome
from .followup import follow_up
from .jobs import register_jobs, slot_of, wanted_jobs
from .media import ADD_MSG_TEMPLATE, MediaPreparer
from .model import Planned, Skip, send_key, task_id_for
from .planner import SlotPlanner, slot_times
from .reminders import ReminderRunner
from .tasks import on_button, on_carry_due, on_escalate_due, on_snooze_due


async def run_slot(session: AsyncSession, pb: Playbook, outbox: Outbox, day: date, at: time, *, now: datetime,
                   agent_id: int, scheduler: Scheduler | None = None, only_source: str | None = None,
                   links: LinkMaker | None = None) -> Outcome:
    """Plan and execute one slot (``at`` on ``day``, policy time zone) in ``session``.

    ``links`` makes link materials tracked radar links (the service always passes one).
    """
    planner = SlotPlanner(pb, day, at, now, only_source=only_source)
    executor = Executor(session, outbox, pb, agent_id=agent_id, now=now, scheduler=scheduler, links=links)
    return await executor.run(planner.run(session))


__all__ = [
    "ADD_MSG_TEMPLATE",
    "Executor",
    "MediaPreparer",
    "Outcome",
    "Planned",
    "ReminderRunner",
    "Skip",
    "SlotPlanner",
    "TaskCard",
    "defer_card",
    "follow_up",
    "issue_card",
    "local_day",
    "next_allowed",
    "on_button",
    "on_carry_due",
    "on_escalate_due",
    "on_snooze_due",
    "register_jobs",
    "run_slot",
    "send_key",
    "slot_of",
    "slot_times",
    "task_id_for",
    "wanted_jobs",
]
