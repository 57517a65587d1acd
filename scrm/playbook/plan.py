"""When would the playbook send what: concrete dates for calendars and paths.

Pure date arithmetic over a loaded :class:`Playbook`: no database, no clock. The scheduler
can use :func:`calendar_occurrences` / :func:`path_occurrences` for one real group or
customer; ``scrm sop plan`` uses :func:`plan_playbook` for a sample group created today and
a sample customer, and multiplies by counts it knows.

Holidays: ``on_holiday`` (per calendar, else the policy's) applies to every day that is not
a workday — weekends and public holidays, but not make-up Saturdays — because mass sends
wait for the manager to confirm them in the WeCom client.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from .expr import ANCHORS, DateExpr
from .fields import OnHoliday, format_hhmm
from .flows import CalendarStep, GroupCalendar, PathSop, PathStep, RecurringRule
from .playbook import Playbook

_WEEKDAY_CN = "一二三四五六日"


@dataclass(frozen=True)
class Occurrence:
    """One planned send or task."""

    source: str  # "calendar:payroll-groups" or "path:payroll-wealth"
    step: str  # the step's stable key
    occurrence: str  # "once", "2026-11" (month), "2026-11-25" (day): part of the idempotency key
    at: datetime  # aware, in the policy time zone
    action: str  # "send <material>" / "task <material>" / "branches"
    to: str  # group | members | customer | manager
    grace: timedelta  # how late it may still run
    note: str = ""  # e.g. "moved from 10-01 (国庆节)"


def _month_starts(start: date, end: date) -> Iterator[date]:
    month = start.replace(day=1)
    while month <= end:
        yield month
        month = (month + timedelta(days=32)).replace(day=1)


def _on_day(month: date, day_of_month: int) -> date:
    """``day_of_month`` in ``month``'s month, clipped to its last day (31 → 28 in February)."""
    nxt = (month.replace(day=1) + timedelta(days=32)).replace(day=1)
    return month.replace(day=min(day_of_month, (nxt - timedelta(days=1)).day))


class _Planner:
    def __init__(self, pb: Playbook) -> None:
        self.pb = pb
        self.cal = pb.work_calendar
        self.tz = ZoneInfo(pb.policy.timezone)

    def place(self, day: date, rule: OnHoliday) -> tuple[date | None, str]:
        """Apply the holiday rule: the day to use (None = skipped) and a note for people."""
        if rule == "send" or self.cal.is_workday(day):
            return day, ""
        why = self.cal.holiday_name(day) or "weekend"
        if rule == "skip":
            return None, f"skipped: {day:%m-%d} is not a workday ({why})"
        moved = self.cal.add_workdays(day, 0)
        return moved, f"moved from {day:%m-%d} ({why})"

    def occurrence(
        self,
        source: str,
        key: str,
        occ: str,
        day: date,
        at: time,
        what: tuple[str, str],
        grace: timedelta,
        rule: OnHoliday,
    ) -> Occurrence | None:
        placed, note = self.place(day, rule)
        if placed is None:
            return None
        when = datetime.combine(placed, at, self.tz)
        return Occurrence(source, key, occ, when, what[0], what[1], grace, note)


def _group_what(entry: CalendarStep | RecurringRule) -> tuple[str, str]:
    if entry.task:
        return f"task {entry.task}", "manager"
    return f"send {entry.send}", entry.to


def calendar_occurrences(
    pb: Playbook,
    calendar: GroupCalendar,
    created: date,
    start: date,
    end: date,
    *,
    payday: int | None = None,
    on_holiday: OnHoliday | None = None,
) -> list[Occurrence]:
    """What ``calendar`` does between ``start`` and ``end`` for a group created on ``created``.

    ``payday`` is the group's day of month (its employer's); the group type's default otherwise.
    ``on_holiday`` overrides every entry's holiday rule (``"send"``: the days as written).
    """
    p = _Planner(pb)
    gt = pb.group_types.get(calendar.group_type)
    payday = payday or (gt.payday if gt else None)
    default = calendar.on_holiday or pb.policy.on_holiday
    grace = calendar.misfire_grace or pb.policy.misfire_grace
    source = f"calendar:{calendar.calendar}"
    out: list[Occurrence] = []
    if not calendar.active:
        return out
    for step in calendar.steps:
        day = created + timedelta(days=step.day)
        if step.active and start <= day <= end:
            rule = on_holiday or step.on_holiday or default
            occ = p.occurrence(source, step.key, "once", day, step.at, _group_what(step), grace, rule)
            out += [occ] if occ else []
    for rec in calendar.recurring:
        if not rec.active:
            continue
        rule = on_holiday or rec.on_holiday or default
        first = max(start, created + timedelta(days=rec.from_day))
        last = min(end, created + timedelta(days=rec.until_day)) if rec.until_day else end
        for day, at, occ_key in _recurring_days(p, rec, first, last, payday):
            occ = p.occurrence(source, rec.key, occ_key, day, at, _group_what(rec), grace, rule)
            out += [occ] if occ else []
    return sorted(out, key=lambda o: (o.at, o.step))


def _recurring_days(
    p: _Planner, rec: RecurringRule, first: date, last: date, payday: int | None
) -> Iterator[tuple[date, time, str]]:
    if first > last:
        return
    if rec.cron:
        from apscheduler.triggers.cron import CronTrigger

        trigger = CronTrigger.from_crontab(rec.cron, timezone=p.tz)
        now = datetime.combine(first, time(0), p.tz)
        fire = trigger.get_next_fire_time(None, now)
        while fire is not None and fire.date() <= last:
            yield fire.date(), fire.timetz().replace(tzinfo=None), fire.date().isoformat()
            fire = trigger.get_next_fire_time(fire, fire + timedelta(seconds=1))
        return
    assert rec.at is not None
    if rec.every == "week":
        day = first
        while day <= last:
            if day.weekday() in rec.weekdays:
                yield day, rec.at, day.isoformat()
            day += timedelta(days=1)
        return
    expr = rec.date_expr
    assert expr is not None
    for month in _month_starts(first, last):
        anchors = {"payday": _on_day(month, payday)} if payday else {}
        if expr.anchor and expr.anchor not in anchors:
            continue  # no payday known for this group: nothing to plan
        day = expr.resolve(month, anchors, p.cal)
        if first <= day <= last:
            yield day, rec.at, f"{month:%Y-%m}"


def path_occurrences(
    pb: Playbook, path: PathSop, anchors: Mapping[str, date | int], start: date, end: date
) -> list[Occurrence]:
    """What ``path`` does between ``start`` and ``end`` for one customer.

    ``anchors`` gives the customer's dates: a day of month (int) for monthly anchors such as
    ``payday``, a date for the others (``birthday`` repeats yearly, the rest happen once).
    Branches are not resolved here: that needs the customer's CRM data at send time.
    """
    p = _Planner(pb)
    rule, grace, source = pb.policy.on_holiday, pb.policy.misfire_grace, f"path:{path.path}"
    out: list[Occurrence] = []
    if not path.active:
        return out
    for step in path.steps:
        anchor = step.on.anchor
        if not step.active or anchor is None or anchor not in anchors:
            continue
        what = _path_what(step)
        for day, occ_key in _path_days(p, step.on, anchors[anchor], start, end):
            occ = p.occurrence(source, step.key, occ_key, day, step.at, what, grace, rule)
            out += [occ] if occ else []
    return sorted(out, key=lambda o: (o.at, o.step))


def _path_what(step: PathStep) -> tuple[str, str]:
    if step.branches:
        return "branches", "customer"
    if step.send:
        return f"send {step.send}", "customer"
    if step.task:
        return f"task {step.task}", "manager"
    return "tag", "customer"


def _path_days(p: _Planner, expr: DateExpr, value: date | int, start: date, end: date) -> Iterator[tuple[date, str]]:
    assert expr.anchor is not None
    repeat = ANCHORS[expr.anchor][0]
    # Look a month either side: "payday + 1 workday" of October may land in November.
    bases: list[tuple[date, str]]
    if repeat == "monthly":
        span = _month_starts(start - timedelta(days=31), end + timedelta(days=31))
        dom = value if isinstance(value, int) else value.day
        bases = [(_on_day(m, dom), f"{m:%Y-%m}") for m in span]
    elif repeat == "yearly":
        assert isinstance(value, date)
        years = range(start.year - 1, end.year + 2)
        bases = [(_on_day(date(y, value.month, 1), value.day), str(y)) for y in years]
    else:
        assert isinstance(value, date)
        bases = [(value, "once")]
    for base, occ_key in bases:
        day = expr.resolve(base, {expr.anchor: base}, p.cal)
        if start <= day <= end:
            yield day, occ_key


def plan_playbook(pb: Playbook, start: date, days: int = 90) -> list[Occurrence]:
    """A preview: each calendar for a group created on ``start``, each path for a sample
    customer (payday 10th, repayment 15th, added on ``start``, product maturing in 30 days)."""
    end = start + timedelta(days=days)
    sample: dict[str, date | int] = {
        "payday": 10,
        "repayment_day": 15,
        "added_at": start,
        "birthday": start + timedelta(days=40),
        "maturity_date": start + timedelta(days=30),
        "risk_expiry": start + timedelta(days=60),
    }
    out: list[Occurrence] = []
    for cal in pb.calendars.values():
        out += calendar_occurrences(pb, cal, start, start, end)
    for path in pb.paths.values():
        out += path_occurrences(pb, path, sample, start, end)
    return sorted(out, key=lambda o: (o.at, o.source, o.step))


def format_plan(occurrences: list[Occurrence]) -> list[str]:
    """One line per occurrence, calendar style: ``2026-11-24 周二 10:00  calendar:… → group``."""
    lines = []
    for o in occurrences:
        when = f"{o.at:%Y-%m-%d} 周{_WEEKDAY_CN[o.at.weekday()]} {format_hhmm(o.at.time())}"
        note = f"  ({o.note})" if o.note else ""
        lines.append(f"{when}  {o.source}  {o.action} → {o.to}{note}")
    return lines
