"""Durable scheduler: a ``due_job`` table, lease-fenced claims, occurrence keys, misfire policy.

APScheduler (3.x) supplies trigger arithmetic only (cron with a time zone, one-off dates,
intervals); its job stores run jobs twice with several processes, so persistence is ours.
A tick claims due jobs (``FOR UPDATE SKIP LOCKED`` on PostgreSQL), turns each scheduled fire
time into an internal event in the inbox — keyed by ``job_key@fire_time`` so several instances
ticking at once, or a replay, enqueue it once — and advances ``next_run_at``.

A job keeps its event kind as a string (``due_job.kind``; rows written before typed events
still fire). The event it fires is stored as every internal event is (``InternalEvent`` JSON:
the job's payload plus ``job_key`` and ``fire_time``), and the inbox dispatches it as the typed
class of that kind (``scrm.kernel.events.Scheduled``): a payload that does not fit is that
event's handler error (retried, then dead-lettered), never a job stuck on every tick.

Misfires: a fire time older than the job's grace is skipped with a logged reason and an
``occurrence`` row (a birthday greeting three days late is worse than none).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger
from pydantic import BaseModel, ConfigDict
from sqlalchemy import and_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from scrm.adapters.db.engine import dialect_of, insert_ignore, table_of, upsert
from scrm.kernel.clock import Clock
from scrm.kernel.config import SchedulerSettings
from scrm.kernel.events import Internal, InternalEvent
from scrm.kernel.inbox import Inbox
from scrm.kernel.leases import claim, new_owner_id
from scrm.kernel.models import DueJob, Occurrence

log = logging.getLogger("scrm.kernel.scheduler")

# Fire times are walked one by one; a job far behind is fast-forwarded instead of replaying
# hundreds of skipped occurrences (each still leaves a "skipped" record up to this many).
MAX_CATCH_UP = 50


class TriggerSpec(BaseModel):
    """What the ``due_job.trigger`` JSON holds."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["cron", "date", "interval"]
    expr: str | None = None  # cron: "30 9 * * *" (minute hour day month weekday)
    at: datetime | None = None  # date
    seconds: int | None = None  # interval
    start: datetime | None = None  # interval anchor
    timezone: str = "Asia/Shanghai"

    def build(self) -> Any:
        tz = ZoneInfo(self.timezone)
        if self.type == "cron":
            if not self.expr:
                raise ValueError("cron trigger needs expr")
            return CronTrigger.from_crontab(self.expr, timezone=tz)
        if self.type == "date":
            if self.at is None:
                raise ValueError("date trigger needs at")
            return DateTrigger(run_date=self.at, timezone=tz)
        if not self.seconds:
            raise ValueError("interval trigger needs seconds")
        return IntervalTrigger(seconds=self.seconds, start_date=self.start, timezone=tz)

    def next_after(self, previous: datetime | None, now: datetime) -> datetime | None:
        """The first fire time after ``previous`` (or from ``now`` when there is none)."""
        fire = self.build().get_next_fire_time(previous, now)
        if fire is None:
            return None
        result: datetime = fire.astimezone(UTC)
        if previous is not None and result <= previous:  # APScheduler returns >= previous
            nxt = self.build().get_next_fire_time(previous, previous + timedelta(seconds=1))
            return nxt.astimezone(UTC) if nxt is not None else None
        return result


class _LeaseLost(Exception):
    pass


class Scheduler:
    def __init__(self, engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession],
                 settings: SchedulerSettings, clock: Clock, inbox: Inbox, *, owner: str | None = None) -> None:
        self.engine = engine
        self.sessions = sessions
        self.settings = settings
        self.clock = clock
        self.inbox = inbox
        self.owner = owner or new_owner_id("scheduler")  # the instance id (scrm.kernel.liveness)

    async def put_job(self, session: AsyncSession, job_key: str, kind: type[Internal] | str, trigger: TriggerSpec,
                      *, payload: Mapping[str, Any] | None = None, misfire_grace_s: int = 3600) -> None:
        """Create or update a job (its next run is recomputed from now) firing events of ``kind``.

        Given the kind's class, the payload is checked against it now (``EventPayloadError``), so
        a job that could never be handled is refused where it is made.
        """
        now = self.clock.now()
        if isinstance(kind, type):
            kind.from_stored(InternalEvent(source="scheduler", kind=kind.KIND, at=now, payload=dict(payload or {})))
            kind = kind.KIND
        row = {"job_key": job_key, "kind": kind, "trigger": trigger.model_dump(mode="json"),
               "payload": dict(payload or {}), "next_run_at": trigger.next_after(None, now),
               "misfire_grace_s": misfire_grace_s, "enabled": True}
        await session.execute(upsert(dialect_of(session), table_of(DueJob), ["job_key"],
                                     ["kind", "trigger", "payload", "next_run_at", "misfire_grace_s", "enabled"]), row)

    async def keep_job(self, session: AsyncSession, job_key: str, kind: type[Internal], trigger: TriggerSpec | None,
                       *, misfire_grace_s: int) -> bool:
        """A standing job as configuration wants it; returns whether it is enabled.

        ``trigger`` None disables the job. An unchanged job is left alone: ``put_job`` recomputes
        the next run from now, and a restart at 02:35 must not skip the 02:30 run that is still
        waiting for a tick."""
        job = await session.scalar(select(DueJob).where(DueJob.job_key == job_key))
        if trigger is None:
            if job is not None and job.enabled:
                await session.execute(update(DueJob).where(DueJob.job_key == job_key).values(enabled=False))
            return False
        unchanged = (job is not None and job.enabled and job.kind == kind.KIND
                     and job.trigger == trigger.model_dump(mode="json") and job.misfire_grace_s == misfire_grace_s
                     and job.next_run_at is not None)
        if not unchanged:
            await self.put_job(session, job_key, kind, trigger, misfire_grace_s=misfire_grace_s)
        return True

    async def tick(self) -> int:
        """Claim due jobs, enqueue their occurrences, advance them; returns occurrences enqueued."""
        now = self.clock.now()
        async with self.engine.begin() as conn:
            jobs = await claim(conn, DueJob, and_(DueJob.enabled.is_(True), DueJob.next_run_at <= now),
                               ["next_run_at", "id"], now=now, lease_s=self.settings.lease_s,
                               owner=self.owner, limit=100)
        fired = 0
        for job in jobs:
            fired += await self._run_job(job, now)
        return fired

    async def _run_job(self, job: Mapping[str, Any], now: datetime) -> int:
        trigger = TriggerSpec.model_validate(job["trigger"])
        fire: datetime | None = job["next_run_at"]
        grace = timedelta(seconds=job["misfire_grace_s"])
        fired = 0
        try:
            fired = await self._advance(job, trigger, fire, grace, now)
        except _LeaseLost:
            # Roll back; the new owner enqueues the same occurrence keys (deduplicated).
            log.warning("scheduler lease lost", extra={"job": job["job_key"]})
            return 0
        if fired:
            self.inbox.wake()
        return fired

    async def _advance(self, job: Mapping[str, Any], trigger: TriggerSpec, fire: datetime | None,
                       grace: timedelta, now: datetime) -> int:
        fired = 0
        async with self.sessions() as session, session.begin():
            walked = 0
            while fire is not None and fire <= now and walked < MAX_CATCH_UP:
                walked += 1
                occurrence = fire.isoformat()
                if now - fire > grace:
                    await self._record(session, job["job_key"], occurrence, "skipped",
                                       f"misfire: {now - fire} late, grace {grace}")
                    log.warning("job occurrence skipped (misfire)",
                                extra={"job": job["job_key"], "fire_time": occurrence})
                else:
                    event = InternalEvent(source="scheduler", kind=job["kind"], at=fire,
                                          payload={**job["payload"], "job_key": job["job_key"],
                                                   "fire_time": occurrence})
                    await self.inbox.add_internal(session, event, f"{job['job_key']}@{occurrence}")
                    fired += 1
                fire = trigger.next_after(fire, now)
            if fire is not None and fire <= now:  # too far behind: jump to the next future time
                fire = trigger.next_after(None, now)
            res = await session.execute(
                update(DueJob).where(DueJob.id == job["id"], DueJob.lease_owner == self.owner)
                .values(next_run_at=fire, last_run_at=now, locked_until=None, lease_owner=None,
                        enabled=fire is not None))
            if res.rowcount != 1:  # type: ignore[attr-defined]
                raise _LeaseLost(job["job_key"])
        return fired

    async def _record(self, session: AsyncSession, job_key: str, occurrence: str, outcome: str,
                      reason: str) -> None:
        row = {"job_key": job_key, "occurrence_key": occurrence, "outcome": outcome, "reason": reason,
               "at": self.clock.now()}
        await session.execute(insert_ignore(dialect_of(session), table_of(Occurrence),
                                            ["job_key", "occurrence_key"]), row)

    async def run(self) -> None:
        while True:
            try:
                await self.tick()
            except Exception:
                log.exception("scheduler tick failed; continuing")
            await asyncio.sleep(self.settings.tick_s)
