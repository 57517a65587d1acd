"""The cockpit's daily roll-up: one day's figures per manager, computed from the raw rows.

A day is the bank's local day (the playbook's time zone). :func:`compute_day` reads the raw rows
of one day and returns ``(userid, metric, key) → value``; :func:`rebuild` stores that as the
day's rows of ``console_rollup`` (replacing what was there, so it is idempotent), and the
nightly job (:mod:`handlers.console.jobs`) calls it for every day not rolled up yet. The same
function computes today's partial day live for the page, so stored and live figures can
never disagree in how they count.

What a day holds, and why it is stable once the day is over (so the rows of a past day equal a
rebuild from the raw rows later):

* ``added`` / ``lost`` / ``removed`` by channel (``follow.state``): relations created that
  day (not those a handover assigned, ``add_way`` 202: the same customer kept); relations the
  customer ended (``lost``, churn) or the manager ended (``removed``), counted on their
  ``status_at``. A transfer (在职/离职继承) is neither.
* ``group_join`` / ``group_quit``: customers (``group_member.type`` 2; staff are not growth)
  joining or leaving a group, for the group's owner.
* ``reach_customer`` / ``reach_group`` (key: the customer or chat id) — SOP steps done for them
  (pushes and task cards; tag steps reach nobody); ``skip`` by reason kind
  (:mod:`handlers.console.reasons`). ``occurrence`` rows name no manager: a group's is its
  owner, a customer's is their primary manager at that moment (the oldest relation active
  then, as the planner picks the sender); with none, ``userid`` "" (whole bank only).
* ``task_*``: task cards *of* that day (``sop_task.day``, as the tasks page counts them) and
  what became of them — issued, done, not relevant, escalated (ever), and the seconds from
  issue to done (key: seconds; a histogram, so a period's median is exact). A card can still
  change after its day: the day counts its unsettled cards and is rolled up again every night
  until none is left (:func:`due_days`).
* ``radar_send`` / ``radar_open`` (clicks) / ``radar_opener`` (key: the customer), by sender.
* ``retained`` (key ``d1``/``d7``/``d30``): relations created N days before this day that were
  still active (or handed over to another manager) N days after they were made (the moment
  falls on this day). A weekly cohort's
  D-N rate is its ``added`` over its days, against ``retained dN`` N days later.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import and_, delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.console import periodcache
from handlers.console.models import ConsoleRollup, ConsoleRollupDay
from handlers.console.reasons import reason_kind
from handlers.contacts.api import ASSIGNED_ADD_WAY, Follow
from handlers.groups.api import GroupChat, GroupMember
from handlers.radar.api import RadarClick, RadarSend
from handlers.sop.api import SopTask
from scrm.adapters.db.engine import dialect_of, table_of, upsert
from scrm.kernel.models import Occurrence

ADDED, LOST, REMOVED = "added", "lost", "removed"
GROUP_JOIN, GROUP_QUIT = "group_join", "group_quit"
REACH_CUSTOMER, REACH_GROUP, SKIP = "reach_customer", "reach_group", "skip"
TASK_ISSUED, TASK_DONE, TASK_NOT_RELEVANT, TASK_ESCALATED, TASK_DONE_SECS = (
    "task_issued", "task_done", "task_not_relevant", "task_escalated", "task_done_secs")
RADAR_SEND, RADAR_OPEN, RADAR_OPENER = "radar_send", "radar_open", "radar_opener"
RETAINED = "retained"
RETENTION_DAYS = (1, 7, 30)
#: Metrics whose keys are counted as distinct over a period (a customer reached on two days is
#: one customer reached).
DISTINCT = frozenset({REACH_CUSTOMER, REACH_GROUP, RADAR_OPENER})
#: A card in one of these may still change: its day is rolled up again.
UNSETTLED = ("open", "escalated", "deferred")
CUSTOMER_TYPE = 2  # group_member.type of an external contact

Figures = dict[tuple[str, str, str], int]  # (userid, metric, key) → value
_IN_CHUNK = 500
T = TypeVar("T")


@dataclass
class DayRollup:
    day: date
    values: Figures = field(default_factory=dict)
    unsettled: int = 0

    def add(self, userid: str, metric: str, key: str, n: int = 1) -> None:
        k = (userid, metric, key[:128])
        self.values[k] = self.values.get(k, 0) + n


def day_window(day: date, zone: str) -> tuple[datetime, datetime]:
    """The UTC instants [start, end) of the local ``day``."""
    tz = ZoneInfo(zone)
    start = datetime.combine(day, time(), tz)
    end = datetime.combine(day + timedelta(days=1), time(), tz)
    return start.astimezone(UTC), end.astimezone(UTC)


def _chunks(items: Sequence[T]) -> Iterator[Sequence[T]]:
    for i in range(0, len(items), _IN_CHUNK):
        yield items[i:i + _IN_CHUNK]


async def compute_day(db: AsyncSession, day: date, zone: str, *, until: datetime | None = None) -> DayRollup:
    """The figures of local ``day`` from the raw rows; with ``until``, only what happened before
    it (today's partial day, computed live)."""
    start, end = day_window(day, zone)
    if until is not None:
        end = min(end, until)
    out = DayRollup(day)
    await _contacts(db, out, start, end)
    await _groups(db, out, start, end)
    await _occurrences(db, out, start, end)
    await _tasks(db, out, day)
    await _radar(db, out, start, end)
    await _retention(db, out, day, zone, end)
    return out


async def _contacts(db: AsyncSession, out: DayRollup, start: datetime, end: datetime) -> None:
    # A relation handed over by succession is the same customer kept, not a new contact.
    added = await db.execute(select(Follow.userid, Follow.state, func.count()).where(
        Follow.created_at >= start, Follow.created_at < end, Follow.add_way != ASSIGNED_ADD_WAY)
        .group_by(Follow.userid, Follow.state))
    for userid, state, n in added.all():
        out.add(userid, ADDED, state or "", int(n))
    ended = await db.execute(select(Follow.userid, Follow.status, Follow.state, func.count()).where(
        Follow.status.in_((LOST, REMOVED)), Follow.status_at >= start, Follow.status_at < end)
        .group_by(Follow.userid, Follow.status, Follow.state))
    for userid, status, state, n in ended.all():
        out.add(userid, status, state or "", int(n))


async def _groups(db: AsyncSession, out: DayRollup, start: datetime, end: datetime) -> None:
    for metric, column in ((GROUP_JOIN, GroupMember.joined_at), (GROUP_QUIT, GroupMember.left_at)):
        rows = await db.execute(select(GroupChat.owner, func.count()).select_from(GroupMember)
                                .join(GroupChat, GroupChat.chat_id == GroupMember.chat_id)
                                .where(GroupMember.type == CUSTOMER_TYPE, column >= start, column < end)
                                .group_by(GroupChat.owner))
        for owner, n in rows.all():
            out.add(owner or "", metric, "", int(n))


def target_of(occurrence_key: str) -> str:
    """``<target>:<day>[:tag|:task]`` → the target (a chat id or an external userid)."""
    key = occurrence_key
    for suffix in (":tag", ":task"):
        key = key.removesuffix(suffix)
    return key.rsplit(":", 1)[0]


async def _occurrences(db: AsyncSession, out: DayRollup, start: datetime, end: datetime) -> None:
    rows = (await db.execute(select(Occurrence.occurrence_key, Occurrence.outcome, Occurrence.reason, Occurrence.at)
                             .where(Occurrence.job_key.startswith("sop:"), Occurrence.outcome.in_(("done", "skipped")),
                                    Occurrence.at >= start, Occurrence.at < end))).all()
    if not rows:
        return
    targets = sorted({target_of(k) for k, _, _, _ in rows})
    owners: dict[str, str] = {}
    follows: dict[str, list[tuple[datetime, str, str, datetime | None]]] = defaultdict(list)
    for chunk in _chunks(targets):
        owners.update({c: o or "" for c, o in (await db.execute(
            select(GroupChat.chat_id, GroupChat.owner).where(GroupChat.chat_id.in_(chunk)))).all()})
        for ext, userid, created, status, status_at in (await db.execute(
                select(Follow.external_userid, Follow.userid, Follow.created_at, Follow.status, Follow.status_at)
                .where(Follow.external_userid.in_(chunk)))).all():
            follows[ext].append((created, userid, status, status_at))
    for key, outcome, reason, at in rows:
        target = target_of(key)
        group = target in owners
        userid = owners[target] if group else primary_manager(follows.get(target, ()), at)
        if outcome == "skipped":
            out.add(userid, SKIP, reason_kind(reason))
        elif not key.endswith(":tag"):
            out.add(userid, REACH_GROUP if group else REACH_CUSTOMER, target)


def primary_manager(follows: Iterable[tuple[datetime, str, str, datetime | None]], at: datetime) -> str:
    """The manager of the oldest relation active at ``at`` ("" when none was)."""
    active = [(created, userid) for created, userid, status, status_at in follows
              if created <= at and (status == "active" or (status_at is not None and status_at > at))]
    return min(active)[1] if active else ""


async def _tasks(db: AsyncSession, out: DayRollup, day: date) -> None:
    rows = await db.execute(select(SopTask.userid, SopTask.status, SopTask.escalated_to, SopTask.created_at,
                                   SopTask.handled_at).where(SopTask.day == day))
    for userid, status, escalated_to, created, handled in rows.all():
        out.add(userid, TASK_ISSUED, "")
        if status == "done":
            out.add(userid, TASK_DONE, "")
            if handled is not None:
                out.add(userid, TASK_DONE_SECS, str(max(0, int((handled - created).total_seconds()))))
        elif status == "not_relevant":
            out.add(userid, TASK_NOT_RELEVANT, "")
        if escalated_to:
            out.add(userid, TASK_ESCALATED, "")
        if status in UNSETTLED:
            out.unsettled += 1


async def _radar(db: AsyncSession, out: DayRollup, start: datetime, end: datetime) -> None:
    sends = await db.execute(select(RadarSend.sender, func.count()).where(RadarSend.at >= start, RadarSend.at < end)
                             .group_by(RadarSend.sender))
    for sender, n in sends.all():
        out.add(sender or "", RADAR_SEND, "", int(n))
    clicks = await db.execute(select(RadarClick.sender, RadarClick.external_userid, func.count())
                              .where(RadarClick.at >= start, RadarClick.at < end)
                              .group_by(RadarClick.sender, RadarClick.external_userid))
    for sender, customer, n in clicks.all():
        out.add(sender or "", RADAR_OPEN, "", int(n))
        if customer:
            out.add(sender or "", RADAR_OPENER, customer, int(n))


#: Relations still holding their customer, whatever became of them later.
_KEPT = ("active", "transferred")


async def _retention(db: AsyncSession, out: DayRollup, day: date, zone: str, bound: datetime) -> None:
    for n in RETENTION_DAYS:
        start, end = day_window(day - timedelta(days=n), zone)
        span = timedelta(days=n)
        # Measurable only once created + span is reached (today's partial day: before ``bound``).
        made = and_(Follow.created_at >= start, Follow.created_at < end, Follow.created_at <= bound - span,
                    Follow.add_way != ASSIGNED_ADD_WAY)
        # Still active, or handed over to another manager (transferred keeps the customer): counted
        # by the database — nine in ten of a day's relations, which the service need not read.
        kept = await db.execute(select(Follow.userid, func.count()).where(made, Follow.status.in_(_KEPT))
                                .group_by(Follow.userid))
        for userid, count in kept.all():
            out.add(userid, RETAINED, f"d{n}", int(count))
        # Ended, but after the moment: only those ended at start + span or later can be (read, then
        # compared with their own moment here: the SQL would need each dialect's date arithmetic).
        ended = await db.execute(select(Follow.userid, Follow.created_at, Follow.status_at).where(
            made, Follow.status.not_in(_KEPT), Follow.status_at > start + span))
        for userid, created, status_at in ended.all():
            if status_at is not None and status_at > created + span:
                out.add(userid, RETAINED, f"d{n}")


async def store(db: AsyncSession, rolled: DayRollup, now: datetime, *,
                only: Sequence[str] | None = None) -> None:
    """Replace the stored rows of ``rolled.day`` — with ``only``, just those metrics' rows (in the
    caller's transaction)."""
    which = [ConsoleRollup.day == rolled.day] + ([ConsoleRollup.metric.in_(only)] if only else [])
    await periodcache.invalidate(db, rolled.day)  # the cockpit's kept periods over this day are stale
    await db.execute(delete(ConsoleRollup).where(*which))
    rows: list[dict[str, Any]] = [{"day": rolled.day, "userid": u, "metric": m, "key": k, "value": v}
                                  for (u, m, k), v in sorted(rolled.values.items()) if v]
    for chunk in _chunks(rows):
        await db.execute(insert(ConsoleRollup), list(chunk))
    await db.execute(upsert(dialect_of(db), table_of(ConsoleRollupDay), ["day"], ["rolled_at", "unsettled"]),
                     {"day": rolled.day, "rolled_at": now, "unsettled": rolled.unsettled})


async def rebuild(db: AsyncSession, day: date, zone: str, now: datetime) -> DayRollup:
    """Roll ``day`` up again from the raw rows (the nightly job does exactly this)."""
    rolled = await compute_day(db, day, zone)
    await store(db, rolled, now)
    return rolled


async def due_days(db: AsyncSession, today: date, history_days: int) -> list[date]:
    """Complete days within ``history_days`` before ``today`` not rolled up yet, or whose task
    cards were not all settled when they were."""
    first = today - timedelta(days=history_days)
    stored = dict((await db.execute(select(ConsoleRollupDay.day, ConsoleRollupDay.unsettled).where(
        ConsoleRollupDay.day >= first, ConsoleRollupDay.day < today))).all())
    days = (first + timedelta(days=i) for i in range((today - first).days))
    return [d for d in days if d not in stored or stored[d] > 0]


TASK_METRICS = (TASK_ISSUED, TASK_DONE, TASK_NOT_RELEVANT, TASK_ESCALATED, TASK_DONE_SECS)


async def refresh_tasks(db: AsyncSession, day: date, now: datetime) -> DayRollup:
    """Roll up again only the task figures of a stored ``day``: the rest of a past day never
    changes, so the stored rows still equal a full rebuild — and a bank whose cards stay open
    for months does not recompute every figure of months of days every night."""
    rolled = DayRollup(day)
    await _tasks(db, rolled, day)
    await store(db, rolled, now, only=TASK_METRICS)
    return rolled


async def roll_up_due(db: AsyncSession, today: date, zone: str, now: datetime, history_days: int) -> list[date]:
    """The nightly job's work: every due day rolled up (a day stored before, only its task
    figures); returns them."""
    first = today - timedelta(days=history_days)
    stored = set((await db.scalars(select(ConsoleRollupDay.day).where(ConsoleRollupDay.day >= first))).all())
    days = await due_days(db, today, history_days)
    for day in days:
        if day in stored:
            await refresh_tasks(db, day, now)
        else:
            await rebuild(db, day, zone, now)
    return days


async def stored_days(db: AsyncSession, since: date, until: date) -> set[date]:
    """Days in [since, until] with a stored roll-up."""
    return set((await db.scalars(select(ConsoleRollupDay.day).where(
        ConsoleRollupDay.day >= since, ConsoleRollupDay.day <= until))).all())


async def stored_rows(db: AsyncSession, day: date) -> Figures:
    """The stored rows of ``day`` (tests compare them with a rebuild)."""
    rows = await db.execute(select(ConsoleRollup.userid, ConsoleRollup.metric, ConsoleRollup.key,
                                   ConsoleRollup.value).where(ConsoleRollup.day == day))
    return {(u, m, k): int(v) for u, m, k, v in rows.all()}
