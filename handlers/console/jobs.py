"""The console's durable scheduler jobs; each fire time becomes one internal event, so several
instances, or a replay, run it once.

* ``console.rollup``, nightly: rolling a day up twice stores the same rows anyway
  (:func:`handlers.console.rollup.rebuild` replaces the day's rows). Each run rolls up every
  complete day not rolled up yet (a service down for a week catches up) and the days whose task
  cards were still unsettled.
  After it, the SOP effect page's stored rows (:func:`handlers.console.effectstore.build_due`),
  then the cockpit's and the effect page's kept periods are warmed.
* ``console.digest``, weekly (:mod:`handlers.console.digest`): its messages are keyed by ISO
  week and member, so even a second run in the same week sends nothing more.
* ``console.outlook``, nightly, and ``console.outlook.now``, a one-off due at start and after
  each playbook reload (the feature's ``jobs`` hook runs then): plan the SOP calendar's next 30
  days and store them (:mod:`handlers.console.outlook`). Both carry the running playbook's
  version; a run for today and that version already stored makes the event a no-op, so a
  restart or a second instance plans nothing twice.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import date, datetime
from typing import ClassVar

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.console import effectstore, outlook, periodcache
from handlers.console.access import Grant, Role, load_access
from handlers.console.cockpit import PERIODS, warm
from handlers.console.digest import queue_digest
from handlers.console.effect import goals_of, playbook_sops
from handlers.console.holder import access_path
from handlers.console.rollup import roll_up_due
from handlers.console.scope import BadScope, resolve
from handlers.console.settings import console_settings
from scrm.kernel.clock import Clock
from scrm.kernel.config import Settings
from scrm.kernel.dispatch import Router
from scrm.kernel.events import Internal, Scheduled
from scrm.kernel.models import DueJob
from scrm.kernel.outbox import Outbox
from scrm.kernel.scheduler import Scheduler, TriggerSpec
from scrm.playbook import Playbook
from scrm.playbook.quiet import local_day

JOB_KEY = "console.rollup"
# Late is still useful (the cockpit computes a missing day live meanwhile); a day later, the
# next night's run catches the day up anyway.
MISFIRE_GRACE_S = 20 * 3600
DIGEST_JOB_KEY = "console.digest"
# A digest a day or two late (the service was down on Monday) still reports last week; later,
# next week's is near.
DIGEST_MISFIRE_GRACE_S = 2 * 24 * 3600
OUTLOOK_JOB_KEY = "console.outlook"
OUTLOOK_NOW_JOB_KEY = "console.outlook.now"
# A late plan is still today's plan (the page shows the previous one meanwhile); a day late,
# the next night's run plans anyway.
OUTLOOK_MISFIRE_GRACE_S = 20 * 3600

router = Router("console")
log = logging.getLogger("handlers.console.rollup")


class ConsoleRollupDue(Scheduled):
    """Roll up the days that are due (fired nightly by the ``console.rollup`` job)."""

    KIND: ClassVar[str] = "console.rollup"
    SOURCE: ClassVar[str] = "console"


class ConsoleDigestDue(Scheduled):
    """Queue the weekly digest (fired by the ``console.digest`` job)."""

    KIND: ClassVar[str] = "console.digest"
    SOURCE: ClassVar[str] = "console"


class ConsoleOutlookDue(Scheduled):
    """Plan the SOP calendar's next 30 days and store them, unless stored for today and
    ``version`` (fired nightly by ``console.outlook``, and by ``console.outlook.now`` at start and
    after each playbook reload)."""

    KIND: ClassVar[str] = "console.outlook"
    SOURCE: ClassVar[str] = "console"

    version: str = ""  # the playbook version running when the job was (re-)registered


EVENTS: tuple[type[Internal], ...] = (ConsoleRollupDue, ConsoleDigestDue, ConsoleOutlookDue)


def zone_of(playbook: Playbook | None, settings: Settings) -> str:
    """The bank's time zone: the playbook's policy, as the pages' dates (``today_of``)."""
    return playbook.policy.timezone if playbook is not None else settings.playbook.timezone


async def register_rollup(session: AsyncSession, scheduler: Scheduler, settings: Settings, zone: str) -> bool:
    """Put (or disable, when ``rollup_cron`` is empty) the nightly roll-up job."""
    expr = console_settings(settings).rollup_cron.strip()
    trigger = TriggerSpec(type="cron", expr=expr, timezone=zone) if expr else None
    return await scheduler.keep_job(session, JOB_KEY, ConsoleRollupDue, trigger, misfire_grace_s=MISFIRE_GRACE_S)


async def register_digest(session: AsyncSession, scheduler: Scheduler, settings: Settings, zone: str) -> bool:
    """Put (or disable, when ``digest_cron`` is empty or the console is off: its link would lead
    nowhere) the weekly digest job."""
    own = console_settings(settings)
    expr = own.digest_cron.strip() if own.enabled else ""
    trigger = TriggerSpec(type="cron", expr=expr, timezone=zone) if expr else None
    return await scheduler.keep_job(session, DIGEST_JOB_KEY, ConsoleDigestDue, trigger,
                                    misfire_grace_s=DIGEST_MISFIRE_GRACE_S)


async def register_outlook(session: AsyncSession, scheduler: Scheduler, settings: Settings, zone: str,
                           version: str, now: datetime) -> bool:
    """Put the calendar's nightly planning (or disable it, when ``outlook_cron`` is empty or the
    console is off) and a one-off planning due ``now`` (the hook runs at start and after each
    reload: a new playbook plans a new calendar at once). Both carry ``version``."""
    own = console_settings(settings)
    if not own.enabled:
        await scheduler.keep_job(session, OUTLOOK_JOB_KEY, ConsoleOutlookDue, None,
                                 misfire_grace_s=OUTLOOK_MISFIRE_GRACE_S)
        return False
    expr = own.outlook_cron.strip()
    trigger = TriggerSpec(type="cron", expr=expr, timezone=zone) if expr else None
    nightly = await scheduler.keep_job(session, OUTLOOK_JOB_KEY, ConsoleOutlookDue, trigger,
                                       misfire_grace_s=OUTLOOK_MISFIRE_GRACE_S)
    if nightly:  # the version only: keep_job leaves an unchanged job's next run alone
        await session.execute(update(DueJob).where(DueJob.job_key == OUTLOOK_JOB_KEY)
                              .values(payload={"version": version}))
    await scheduler.put_job(session, OUTLOOK_NOW_JOB_KEY, ConsoleOutlookDue, TriggerSpec(type="date", at=now),
                            payload={"version": version}, misfire_grace_s=OUTLOOK_MISFIRE_GRACE_S)
    return nightly


async def register_jobs(session: AsyncSession, scheduler: Scheduler, settings: Settings, zone: str,
                        version: str, now: datetime) -> None:
    """Every console job as the configuration wants it (``version``: the running playbook's)."""
    await register_rollup(session, scheduler, settings, zone)
    await register_digest(session, scheduler, settings, zone)
    await register_outlook(session, scheduler, settings, zone, version, now)


@router.on(ConsoleRollupDue)
async def on_rollup(event: ConsoleRollupDue, session: AsyncSession, clock: Clock, settings: Settings,
                    playbook: Playbook) -> None:
    now = clock.now()
    today, zone = local_day(playbook, now), zone_of(playbook, settings)
    days = await roll_up_due(session, today, zone, now, console_settings(settings).rollup_history_days)
    log.info("console roll-up: %d day(s)", len(days),
             extra={"days": [d.isoformat() for d in days[:5]] + (["…"] if len(days) > 5 else [])})
    # The effect rows before the warm-ups: building a day drops every kept period covering it, the
    # cockpit's included (built after the cockpit's warm-up, yesterday's rebuild emptied it again).
    goals = goals_of(playbook_sops(playbook))
    built = await effectstore.build_due(session, today, zone, goals, now)
    log.info("console effect rows: %d day(s) built", len(built))
    scopes = [g.scope for g in load_access(access_path(settings)).grants.values()]
    await warm_cockpit(session, today, scopes)
    await warm_effect(session, today, goals, scopes)


async def warm_cockpit(session: AsyncSession, today: date, depts: Iterable[str] = ()) -> None:
    """After the roll-up: yesterday's kept periods are useless today (every period moved on a
    day), so empty the cache and compute the 7, 30 and 90 days of the whole bank and of every
    scope of the access file (``depts``: what each branch head and team lead opens first), for
    today's first views (``handlers.console.periodcache``). Without it each scope's first view
    of the day aggregates its periods itself: ~0.3 s of PostgreSQL each on a million customers."""
    await periodcache.clear(session)
    admin = Grant("", Role.OPS_ADMIN)
    for dept in sorted({"", *(d.strip().strip("/") for d in depts)}):
        for days in PERIODS:
            try:
                await warm(session, admin, today=today, days=days, dept=dept)
            except BadScope as exc:  # a scope nobody is in (yet): nothing to keep
                log.warning("console warm-up: %s", exc)
                break


async def warm_effect(session: AsyncSession, today: date, goals: effectstore.Goals, depts: Iterable[str] = ()) -> None:
    """After the effect rows are built (and :func:`warm_cockpit` emptied the period cache): keep
    the stored days' counts of the effect page's 7, 30 and 90 days for the whole bank and every
    scope of the access file, as the cockpit's (without it each scope's first view of the day
    counts ~140,000 stored rows for 30 days itself)."""
    admin = Grant("", Role.OPS_ADMIN)
    for dept in sorted({"", *(d.strip().strip("/") for d in depts)}):
        try:
            scope = await resolve(session, admin, dept=dept)
        except BadScope as exc:  # a scope nobody is in (yet): nothing to keep
            log.warning("console effect warm-up: %s", exc)
            continue
        for days in PERIODS:
            await effectstore.warm(session, scope, today=today, days=days, goals=goals)


@router.on(ConsoleOutlookDue)
async def on_outlook(event: ConsoleOutlookDue, session: AsyncSession, clock: Clock, playbook: Playbook) -> None:
    now = clock.now()
    run = await outlook.refresh(session, playbook, event.version, local_day(playbook, now), now)
    if run is None:
        log.info("console outlook: already planned for today and playbook %s", event.version or "(none)")


@router.on(ConsoleDigestDue)
async def on_digest(event: ConsoleDigestDue, session: AsyncSession, clock: Clock, settings: Settings,
                    playbook: Playbook, outbox: Outbox) -> None:
    # The access file as it is now (a lead added this morning gets this week's digest).
    await queue_digest(session, outbox, settings, playbook, load_access(access_path(settings)), clock.now())
