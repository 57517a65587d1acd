"""Plan one time slot of one day: which groups and customers get what, and every skip's reason.

The planner streams groups (per calendar, by ``group_type``) and customers (in batches with
follows, tags and CRM attributes), asks :mod:`scrm.playbook.plan` for the dates of each step —
memoised per distinct anchor value, since a million customers share ~31 paydays — and passes
each candidate through :class:`ContactGate`. Nothing is written here; see :mod:`.executor`.

Customers are not all read: for each path of the slot the planner works out which anchor
values put a step on the day (paydays 9 and 10, contacts added on 10-12 ...) and lets SQL find
the customers with those values and the path's tags (:func:`.targets.candidate_ids`, a
superset); each candidate then goes through the same exact checks as before.

Two entry points: :class:`SlotPlanner` plans one slot (the scheduler's ``sop.due`` jobs, one
per HH:MM, each seeing what earlier slots wrote); :class:`DayPlanner` plans every slot of a
day in one run (``scrm sop plan``, ``bench/sop_plan.py``), carrying caps and task counts in
memory from slot to slot as the jobs would find them in the database.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.campaigns.api import HOLDOUT_REASON, CampaignBook, ExperimentBook, campaigns_in_force
from handlers.campaigns.api import in_force as experiments_in_force
from handlers.groups.api import GroupMember
from handlers.sop.models import SopSend, SopTask
from scrm.playbook import (
    CalendarStep,
    EvaluationError,
    GroupCalendar,
    PathSop,
    PathStep,
    Playbook,
    RecurringRule,
    calendar_occurrences,
    date_variables,
    path_occurrences,
)
from scrm.playbook.expr import ANCHORS, DateExpr, Workdays
from scrm.playbook.flows import Branch, PathActions

from .campaign_slots import plan_campaigns
from .model import Decision, Planned, Skip, send_key
from .policy import ContactGate
from .targets import (
    REFERENCE_YEAR,
    Audience,
    CustomerTarget,
    GroupTarget,
    candidate_ids,
    iter_customers,
    iter_customers_in,
    iter_groups,
    member_names,
    tag_names,
)

GroupEntry = CalendarStep | RecurringRule
# plan.py filters on the step's own date, then moves it past holidays: look back this far so a
# step moved *onto* the planned day (国庆 is 7-8 days) is found, then keep the day's own only.
HOLIDAY_LOOKBACK = timedelta(days=15)


def slot_times(pb: Playbook) -> dict[time, timedelta]:
    """Every distinct HH:MM a calendar or path step runs at, with the longest grace there."""
    slots: dict[time, timedelta] = {}

    def add(at: time | None, grace: timedelta) -> None:
        if at is not None:
            slots[at] = max(slots.get(at, timedelta(0)), grace)

    for cal in pb.calendars.values():
        if cal.active:
            grace = cal.misfire_grace or pb.policy.misfire_grace
            for s in cal.steps:
                add(s.at, grace)
            for r in cal.recurring:
                add(r.send_time, grace)
    for path in pb.paths.values():
        if path.active:
            for p in path.steps:
                add(p.at, pb.policy.misfire_grace)
    return slots


def _parse_date(value: object) -> date | None:
    if isinstance(value, date):
        return value
    if isinstance(value, str) and value:
        try:
            return date.fromisoformat(value[:10])
        except ValueError:
            return None
    return None


def customer_anchor(customer: CustomerTarget, anchor: str, tz: ZoneInfo) -> date | int | None:
    """The customer's value of a path anchor: a day of month (monthly ones) or a date."""
    if anchor == "added_at":
        manager = customer.manager
        return manager.created_at.astimezone(tz).date() if manager else None
    raw = customer.attributes.get(anchor)
    if ANCHORS[anchor][0] == "monthly":
        try:
            day = int(str(raw)) if raw not in (None, "") else None
        except (TypeError, ValueError):
            return None
        return day if day is not None and 1 <= day <= 31 else None
    return _parse_date(raw)


def choose_branch(step: PathStep, values: Mapping[str, object], tags: set[str]) -> PathActions | None:
    """The first branch whose condition holds (unknown data counts as false), else ``else:``."""
    if not step.branches:
        return step
    for branch in step.branches:
        if branch.otherwise:
            return branch
        if branch.when is not None and _holds(branch, values, tags):
            return branch
    return None


def _holds(branch: Branch, values: Mapping[str, object], tags: set[str]) -> bool:
    assert branch.when is not None
    try:
        return branch.when.evaluate(values, tags)
    except EvaluationError:
        return False


class DayState:
    """What the slots of one day share: the contact gate's counters, keys already done, names.

    Loaded from the database once; a :class:`DayPlanner` passes one to each slot, so a send
    planned at 09:30 counts against the customer's cap at 10:00 as the executor's row would.
    """

    def __init__(self, pb: Playbook, day: date, *, experiments: ExperimentBook | None = None,
                 campaigns: CampaignBook | None = None) -> None:
        self.gate = ContactGate(pb, day)
        self.day = day
        self.done: set[str] = set()
        self.managers: dict[str, str] = {}
        self.tags: dict[str, str] = {}
        # Given (``scrm campaign plan`` previews the files), else read from the database.
        self._given = (experiments, campaigns)
        self.experiments = experiments or ExperimentBook()
        self.campaigns = campaigns or CampaignBook()
        self._loaded = False

    async def load(self, session: AsyncSession) -> None:
        if self._loaded:
            return
        # Keys already planned today: a restart or a second instance re-plans them as no-ops.
        keys = union_all(select(SopSend.key).where(SopSend.day == self.day),
                         select(SopTask.key).where(SopTask.day == self.day))
        self.done.update(await session.scalars(keys))
        await self.gate.load_tasks(session)
        self.managers = await member_names(session)
        self.tags = await tag_names(session)
        experiments, campaigns = self._given
        self.experiments = experiments if experiments is not None else await experiments_in_force(session)
        self.campaigns = campaigns if campaigns is not None else await campaigns_in_force(session)
        self._loaded = True


class SlotPlanner:
    """Plans the slot ``at`` of ``day`` (policy time zone); ``now`` decides misfires.

    ``scan_all`` reads every customer instead of the SQL-narrowed candidates: the plain
    algorithm, kept as the reference the tests hold the narrowed one to.
    """

    def __init__(self, pb: Playbook, day: date, at: time, now: datetime, *, only_source: str | None = None,
                 state: DayState | None = None, scan_all: bool = False) -> None:
        self.pb = pb
        self.day = day
        self.at = at
        self.now = now
        self.tz = ZoneInfo(pb.policy.timezone)
        self.state = state or DayState(pb, day)
        self.gate = self.state.gate
        self.only_source = only_source
        self.scan_all = scan_all
        self._cal_cache: dict[tuple[str, date, int | None], list[Any]] = {}
        self._path_cache = lru_cache(maxsize=4096)(self._path_occ)

    @property
    def done(self) -> set[str]:
        return self.state.done

    @property
    def managers(self) -> dict[str, str]:
        return self.state.managers

    # -- entry point -------------------------------------------------------------------------
    async def run(self, session: AsyncSession) -> AsyncIterator[Decision]:
        await self.state.load(session)
        for cal in self.pb.calendars.values():
            if cal.active and self._wanted(f"calendar:{cal.calendar}") and self._cal_has_slot(cal):
                async for d in self._calendar(session, cal):
                    yield d
        paths = [p for p in self.pb.paths.values()
                 if p.active and self._wanted(f"path:{p.path}") and any(s.at == self.at for s in p.steps)]
        if paths:
            async for d in self._paths(session, paths):
                yield d
        # One-off campaigns (campaigns feature) whose channels fall on this slot.
        async for d in plan_campaigns(self, session):
            yield d

    def _wanted(self, source: str) -> bool:
        return self.only_source is None or self.only_source in (source, source.split(":", 1)[1])

    def _late(self, grace: timedelta) -> str | None:
        due = datetime.combine(self.day, self.at, self.tz)
        late = self.now - due
        return f"misfire: {late} late, grace {grace}" if late > grace else None

    # -- calendars ---------------------------------------------------------------------------
    def _cal_has_slot(self, cal: GroupCalendar) -> bool:
        return any(s.at == self.at for s in cal.steps) or any(r.send_time == self.at for r in cal.recurring)

    def _cal_occurrences(self, cal: GroupCalendar, created: date, payday: int | None = None) -> list[Any]:
        key = (cal.calendar, created, payday)
        if key not in self._cal_cache:
            occ = calendar_occurrences(self.pb, cal, created, self.day - HOLIDAY_LOOKBACK, self.day, payday=payday)
            placed = [o for o in occ if o.at.time() == self.at and o.at.date() == self.day]
            # Steps the holiday rule removed: recorded as skips, not silently lost.
            default = cal.on_holiday or self.pb.policy.on_holiday
            rules = {s.key: s.on_holiday or default for s in cal.steps}
            rules.update({r.key: r.on_holiday or default for r in cal.recurring})
            dropped: list[Any] = []
            if "skip" in rules.values() and not self.pb.work_calendar.is_workday(self.day):
                raw = calendar_occurrences(self.pb, cal, created, self.day, self.day, payday=payday, on_holiday="send")
                kept = {o.step for o in placed}
                dropped = [o for o in raw if o.at.time() == self.at and o.at.date() == self.day
                           and o.step not in kept and rules.get(o.step) == "skip"]
            self._cal_cache[key] = [(o, None) for o in placed] + [(o, "holiday: not a workday") for o in dropped]
        return self._cal_cache[key]

    async def _calendar(self, session: AsyncSession, cal: GroupCalendar) -> AsyncIterator[Decision]:
        source = f"calendar:{cal.calendar}"
        entries: dict[str, GroupEntry] = {s.key: s for s in cal.steps}
        entries.update({r.key: r for r in cal.recurring})
        late = self._late(cal.misfire_grace or self.pb.policy.misfire_grace)
        async for group in iter_groups(session, [cal.group_type]):
            created = group.created_at.astimezone(self.tz).date()
            # A payroll group's own employer payday (from the CRM) over the group type's default.
            for occ, why in self._cal_occurrences(cal, created, group.payday):
                entry = entries[occ.step]
                if send_key(source, entry.key, group.chat_id, self.day) in self.done:
                    continue
                reason = (why or late or self.gate.quiet(self.at) or self.gate.material(entry.send or entry.task)
                          or (self.gate.group(entry.send or entry.task) if entry.to != "members" else None))
                if reason:
                    yield Skip(source, entry.key, group.chat_id, self.day, reason)
                elif entry.task:
                    yield self._task(source, entry.key, group, entry.task)
                elif entry.to == "members":
                    async for d in self._members(session, source, entry, group):
                        yield d
                else:
                    yield Planned("group", source, entry.key, group.chat_id, group.owner, self.day, self.at,
                                  entry.send, self._group_context(group))

    def _task(self, source: str, step: str, group: GroupTarget, material: str) -> Decision:
        task = Planned("task", source, step, group.chat_id, group.owner, self.day, self.at, material,
                       self._group_context(group))
        reason = self.gate.manager_tasks(group.owner)
        if reason:  # carried over to the next workday by the executor
            return Skip(source, step, group.chat_id, self.day, reason, carry=task)
        self.gate.count_task(group.owner)
        return task

    async def _members(self, session: AsyncSession, source: str, entry: GroupEntry,
                       group: GroupTarget) -> AsyncIterator[Decision]:
        """``to: members``: 1:1 from the owner to the members who are the owner's contacts."""
        ids = [m for (m,) in (await session.execute(
            select(GroupMember.member_id).where(GroupMember.chat_id == group.chat_id, GroupMember.type == 2,
                                                GroupMember.left_at.is_(None)))).all()]
        if not ids:
            return
        async for batch in iter_customers(session, self.state.tags, only=ids):
            await self.gate.load_sends(session, [c.external_userid for c in batch])
            await self.gate.load_customers(session, batch)
            for c in batch:
                follow = next((f for f in c.follows if f.userid == group.owner), None)
                if follow is None or send_key(source, entry.key, c.external_userid, self.day) in self.done:
                    continue
                if entry.tags is not None and not entry.tags.matches(c.tags):
                    continue  # not in the audience: not a skip
                reason = (self.gate.opted_out(c.tags) or self.gate.suitable(entry.send, c)
                          or self.gate.customer_caps(c.external_userid))
                if reason:
                    yield Skip(source, entry.key, c.external_userid, self.day, reason)
                    continue
                self.gate.count_send(c.external_userid)
                ctx = {**self._group_context(group), **self._customer_context(c, follow.userid, follow.remark)}
                yield Planned("private", source, entry.key, c.external_userid, group.owner, self.day, self.at,
                              entry.send, ctx, checks=self.gate.checks(entry.send, c))

    # -- paths -------------------------------------------------------------------------------
    def _path_occ(self, path_name: str, value: date | int) -> tuple[str, ...]:
        path = self.pb.paths[path_name]
        occs = path_occurrences(self.pb, path, {path.anchor: value}, self.day - HOLIDAY_LOOKBACK, self.day)
        return tuple(o.step for o in occs if o.at.time() == self.at and o.at.date() == self.day)

    def _audience(self, path: PathSop) -> Audience | None:
        """What SQL may narrow ``path`` to in this slot; None when no anchor value fits today."""
        repeat = ANCHORS[path.anchor][0]
        values: frozenset[int] | frozenset[date]
        if repeat == "monthly":
            values = frozenset(v for v in range(1, 32) if self._path_cache(path.path, v))
        elif repeat == "yearly":  # only month and day count: try each day of a leap year
            first = date(REFERENCE_YEAR, 1, 1)
            year = (first + timedelta(days=n) for n in range(366))
            values = frozenset(d for d in year if self._path_cache(path.path, d))
        else:
            values = frozenset(d for d in self._once_candidates(path) if self._path_cache(path.path, d))
        if not values:
            return None
        return Audience(path.anchor, values, tuple(path.when.all), tuple(path.when.any))

    def _once_candidates(self, path: PathSop) -> set[date]:
        """Anchor dates whose step date falls in the window :meth:`_path_occ` looks at.

        A step's date is a non-decreasing function of the anchor (``+ n days``, ``- n
        workdays``), so the dates mapping into ``[day - HOLIDAY_LOOKBACK, day]`` form one range,
        found by bisection; :meth:`_path_occ` then keeps the ones that really land today.
        """
        lo, hi = (self.day - HOLIDAY_LOOKBACK).toordinal(), self.day.toordinal()
        out: set[date] = set()
        for step in path.steps:
            if step.active and step.at == self.at and step.on.anchor == path.anchor:
                when = _step_day(step.on, path.anchor, self.pb.work_calendar)
                span = 400 + 3 * abs(step.on.offset)
                while when(lo - span) >= lo or when(hi + span) <= hi:
                    span *= 2  # not bracketed yet (long holidays in a workday offset): look further
                first = _bisect(when, lo - span, hi + span, lo)
                last = _bisect(when, lo - span, hi + span, hi + 1) - 1
                out.update(date.fromordinal(v) for v in range(first, last + 1))
        return out

    async def _paths(self, session: AsyncSession, paths: list[PathSop]) -> AsyncIterator[Decision]:
        tags = self.state.tags
        if self.scan_all:
            batches = iter_customers(session, tags)
        else:
            audiences = [self._audience(p) for p in paths]
            ids = await candidate_ids(session, tags, [a for a in audiences if a is not None], self.tz)
            batches = iter_customers_in(session, tags, ids)
        async for batch in batches:
            await self.gate.load_sends(session, [c.external_userid for c in batch])
            await self.gate.load_customers(session, batch)
            for customer in batch:
                for path in paths:
                    for d in self._path_customer(path, customer):
                        yield d

    def _path_customer(self, path: PathSop, c: CustomerTarget) -> list[Decision]:
        if not path.when.matches(c.tags):
            return []
        if path.when.stage_entered is not None and c.attributes.get("stage") != path.when.stage_entered:
            return []  # left the stage (or never in it): the series stops
        values = c.values()
        if path.when.condition is not None:
            try:
                if not path.when.condition.evaluate(values, c.tags):
                    return []
            except EvaluationError:
                return []
        value = customer_anchor(c, path.anchor, self.tz)
        if value is None:
            return []
        steps = self._path_cache(path.path, value)
        out: list[Decision] = []
        source = f"path:{path.path}"
        manager = c.manager
        assert manager is not None
        for key in steps:
            step = next(s for s in path.steps if s.key == key)
            if send_key(source, key, c.external_userid, self.day) in self.done:
                continue
            action = choose_branch(step, values, c.tags)
            if action is None:
                continue
            # An A/B experiment on the step (campaigns feature): the customer's variant replaces the
            # material; a holdout customer passes the same checks (so the arms compare like with
            # like), then receives nothing.
            arm = self.state.experiments.arm(source, key, c.external_userid)
            if arm is not None:
                action = arm.applied_to(action)
            reason = (self._late(self.pb.policy.misfire_grace) or self.gate.quiet(self.at)
                      or self.gate.opted_out(c.tags) or self.gate.material(action.send)
                      or self.gate.material(action.task)
                      or self.gate.suitable(action.send, c) or self.gate.suitable(action.task, c))
            if reason is None and action.send:
                reason = self.gate.customer_caps(c.external_userid)
            if reason:
                tell = None
                if action.task and reason.startswith(("suitability:", "consent:")):
                    tell = (manager.userid, self.gate.task_notice(action.task, c, reason))
                out.append(Skip(source, key, c.external_userid, self.day, reason, tell=tell))
                continue
            if arm is not None and arm.holdout:
                out.append(Skip(source, key, c.external_userid, self.day, HOLDOUT_REASON))
                continue
            ctx = self._customer_context(c, manager.userid, manager.remark)
            if action.send:
                self.gate.count_send(c.external_userid)
                out.append(Planned("private", source, key, c.external_userid, manager.userid, self.day, self.at,
                                   action.send, ctx, allow_select=action.allow_select,
                                   checks=self.gate.checks(action.send, c)))
            if action.task:
                task = Planned("task", source, key, c.external_userid, manager.userid, self.day, self.at,
                               action.task, ctx, script=action.script)
                over = self.gate.manager_tasks(manager.userid)
                if over:  # the customer's message still goes; the card is carried over
                    out.append(Skip(source, key, c.external_userid, self.day, over, carry=task))
                else:
                    self.gate.count_task(manager.userid)
                    out.append(task)
            if action.tag or action.untag:
                out.append(Planned("tag", source, key, c.external_userid, manager.userid, self.day, self.at,
                                   None, ctx, tuple(action.tag), tuple(action.untag)))
        return out

    # -- template context --------------------------------------------------------------------
    def _base_context(self, manager: str) -> dict[str, str]:
        return {**date_variables(self.day), "manager.name": self.managers.get(manager) or manager}

    def _group_context(self, group: GroupTarget) -> dict[str, str]:
        gt = self.pb.group_types.get(group.group_type)
        day = group.payday or (gt.payday if gt else None)
        payday = str(day) if day else ""
        return {**self._base_context(group.owner), "group.name": group.name, "group.payday": payday}

    def _customer_context(self, c: CustomerTarget, manager: str, remark: str) -> dict[str, str]:
        return customer_context(c, remark, self._base_context(manager))


class DayPlanner:
    """Plans every slot of ``day`` in one run, slot by slot in time order.

    The slots share one :class:`DayState`, so what an earlier slot planned counts against
    caps and task limits in later ones, as it does when the ``sop.due`` jobs run and the
    executor writes in between. Each slot is planned as if run on time, unless ``now`` is
    given (then misfires are judged against it).
    """

    def __init__(self, pb: Playbook, day: date, *, now: datetime | None = None, only_source: str | None = None,
                 scan_all: bool = False, state: DayState | None = None) -> None:
        self.pb = pb
        self.day = day
        self.now = now
        self.only_source = only_source
        self.scan_all = scan_all
        self.tz = ZoneInfo(pb.policy.timezone)
        self.state = state

    def slots(self) -> list[time]:
        return sorted(slot_times(self.pb))

    async def run(self, session: AsyncSession) -> AsyncIterator[Decision]:
        state = self.state or DayState(self.pb, self.day)
        await state.load(session)
        for at in sorted({*self.slots(), *state.campaigns.slot_times()}):
            now = self.now or datetime.combine(self.day, at, self.tz)
            planner = SlotPlanner(self.pb, self.day, at, now, only_source=self.only_source, state=state,
                                  scan_all=self.scan_all)
            async for d in planner.run(session):
                yield d


def _step_day(expr: DateExpr, anchor: str, calendar: Workdays) -> Callable[[int], int]:
    """Anchor date → the step's (unplaced) date, both as ordinals."""

    def when(v: int) -> int:
        d = date.fromordinal(v)
        return expr.resolve(d, {anchor: d}, calendar).toordinal()

    return when


def _bisect(f: Callable[[int], int], lo: int, hi: int, target: int) -> int:
    """The least ``v`` in ``[lo, hi]`` with ``f(v) >= target`` (``f`` non-decreasing), else ``hi + 1``."""
    hi += 1
    while lo < hi:
        mid = (lo + hi) // 2
        if f(mid) >= target:
            hi = mid
        else:
            lo = mid + 1
    return lo


def customer_context(c: CustomerTarget, remark: str, base: Mapping[str, str]) -> dict[str, str]:
    """Template values about one customer: CRM name first, then the WeCom name."""
    ctx = dict(base)
    ctx.update({f"crm.{k}": _fmt(v) for k, v in c.attributes.items()})
    ctx["customer.name"] = str(c.attributes.get("name") or c.name)
    ctx["customer.remark"] = remark
    return ctx


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}"
    parsed = _parse_date(value) if isinstance(value, str) and len(value) == 10 else None
    if parsed is not None:
        return f"{parsed.year}年{parsed.month}月{parsed.day}日"
    return str(value)
