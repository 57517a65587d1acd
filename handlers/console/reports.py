"""The named reports of ``scrm report NAME`` and ``GET /api/v1/reports/NAME``: one registry, so
the command, the BI API and the weekly digest always compute the same figures the same way.

A report is ``(name, description, compute)``; ``compute(db, grant, *, since, until, by, zone,
now)`` returns plain JSON data for the part of the bank ``grant`` covers, over the local days
``since`` to ``until`` (the bank's zone ``zone``; ``until`` is today at the latest), either as a
whole (``by`` None) or one row per unit:

* ``branch``: the first two levels of the department path, ``分行/支行`` — the level a branch
  head's scope names in ``sop/console.yaml`` (杭州分行/城西支行);
* ``team``: the first three levels, ``分行/支行/团队`` (杭州分行/城西支行/代发服务团队);
* ``manager``: one row per member (userid).

A member sitting above the level (a branch head in ``杭州分行/城西支行`` under ``--by team``)
gets the row of their own department path, so every member counts in exactly one row. Figures
nobody is credited with (an SOP step for a customer no one follows) count for the whole bank
only, so the rows of a bank-wide report may sum to less than its whole.

Adding a report is one entry in :data:`REPORTS`; a function computed for one grant,
``fn(db, grant, *, since, until, zone)``, becomes one with :func:`scoped`.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.console.access import SCOPED, Grant, Role
from handlers.console.cockpit import SCOPE, Period, cockpit, group_level, live_days, load_period
from handlers.console.effect import sop_effect
from handlers.console.scope import BadScope, Scope, ScopeRefused, resolve
from handlers.console.taskcounts import STATUSES, task_counts
from handlers.feedback.api import FeedbackAnswer
from scrm.playbook import Playbook

UNITS = ("branch", "team", "manager")
LEVELS = {"branch": 2, "team": 3}  # how many levels of the department path name the unit
NO_DEPARTMENT = "（未分配部门）"
DEFAULT_DAYS = 30
# A longer period reads (and, before the roll-up's history, computes live) too many days for
# one request of the BI.
MAX_DAYS = 366
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


class BadAsk(ValueError):
    """A report asked for wrongly (unknown name, bad date, bad period, bad unit): one line."""


class Compute(Protocol):
    def __call__(self, db: AsyncSession, grant: Grant, *, since: date, until: date, by: str | None, zone: str,
                 now: datetime, playbook: Playbook | None) -> Awaitable[dict[str, Any]]: ...


@dataclass(frozen=True)
class Report:
    name: str
    description: str
    compute: Compute


@dataclass(frozen=True)
class Ask:
    """One report, checked: what to compute, over which days, split how."""

    report: Report
    since: date
    until: date
    by: str | None


def today_in(zone: str, now: datetime) -> date:
    return now.astimezone(ZoneInfo(zone)).date()


def _day(text: str, what: str) -> date:
    if not _DATE.fullmatch(text.strip()):
        raise BadAsk(f"{what} must be a date YYYY-MM-DD, not {text!r}")
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise BadAsk(f"{what} {text!r} is not a date") from None


def ask(name: str, *, today: date, since: str | None = None, until: str | None = None, days: str | None = None,
        by: str | None = None) -> Ask:
    """Check a request (the command's options or the API's query, as text). Without a period: the
    last 30 days ending today; ``days`` N: the N days ending today; only ``since``: up to today;
    only ``until``: the 30 days ending then."""
    report = REPORTS.get(name)
    if report is None:
        raise BadAsk(f"unknown report {name!r} (one of {', '.join(REPORTS)})")
    if days and (since or until):
        raise BadAsk("give days or since/until, not both")
    if days:
        if not days.strip().isdigit() or not 1 <= int(days) <= MAX_DAYS:
            raise BadAsk(f"days must be a number from 1 to {MAX_DAYS}, not {days!r}")
        first, last = today - timedelta(days=int(days) - 1), today
    else:
        last = _day(until, "until") if until else today
        first = _day(since, "since") if since else last - timedelta(days=DEFAULT_DAYS - 1)
    if first > last:
        raise BadAsk(f"since {first} is after until {last}")
    if last > today:
        raise BadAsk(f"until {last} is after today ({today})")
    if (last - first).days + 1 > MAX_DAYS:
        raise BadAsk(f"a report covers at most {MAX_DAYS} days")
    if by and by not in UNITS:
        raise BadAsk(f"by must be one of {', '.join(UNITS)}, not {by!r}")
    return Ask(report, first, last, by or None)


def narrowed(grant: Grant, dept: str) -> Grant:
    """``grant`` limited to the department ``dept`` (a path inside it; ScopeRefused otherwise)."""
    dept = dept.strip().strip("/")
    if not dept:
        return grant
    if not grant.covers(dept):
        raise ScopeRefused(dept)
    return Grant(grant.userid, grant.role if grant.role in SCOPED else Role.BRANCH_HEAD, dept)


async def run(db: AsyncSession, grant: Grant, wanted: Ask, *, zone: str, now: datetime, dept: str = "",
              playbook: Playbook | None = None) -> dict[str, Any]:
    """The report's data for ``grant`` (narrowed to ``dept``); ``playbook`` for the reports that
    read it (None: not loaded). Raises ScopeRefused (outside the grant), BadScope (no such
    department) or BadAsk."""
    return await wanted.report.compute(db, narrowed(grant, dept), since=wanted.since, until=wanted.until,
                                       by=wanted.by, zone=zone, now=now, playbook=playbook)


# -- units ------------------------------------------------------------------------------------

def unit_of(by: str, userid: str, department: str) -> str:
    if by == "manager":
        return userid
    return "/".join([p for p in department.split("/") if p][:LEVELS[by]])


def units(members: Mapping[str, tuple[str, str]], by: str) -> dict[str, tuple[str, set[str]]]:
    """unit → (label, its members' userids), in unit order."""
    out: dict[str, tuple[str, set[str]]] = {}
    for userid, (name, department) in members.items():
        unit = unit_of(by, userid, department)
        label = name if by == "manager" else unit or NO_DEPARTMENT
        out.setdefault(unit, (label, set()))[1].add(userid)
    return dict(sorted(out.items()))


def _period(since: date, until: date) -> dict[str, Any]:
    return {"days": (until - since).days + 1, "since": since.isoformat(), "until": until.isoformat()}


def _scope(scope: Scope) -> dict[str, Any]:
    return {"dept": scope.dept, "label": scope.label}


def _span(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


# -- cockpit ----------------------------------------------------------------------------------

async def _periods(db: AsyncSession, scope: Scope, since: date, until: date, *, zone: str, now: datetime,
                   groups: Mapping[str, str] | None = None) -> tuple[Period, Period]:
    """The figures of ``since``..``until`` and of the period of the same length before, as the
    cockpit reads them (:func:`handlers.console.cockpit.load_period`), per group when given."""
    n = (until - since).days + 1
    prev_since, prev_until = since - timedelta(days=n), since - timedelta(days=1)
    live = await live_days(db, scope, prev_since, until, today=today_in(zone, now), now=now, zone=zone)
    return (await load_period(db, scope, _span(since, until), live, groups=groups),
            await load_period(db, scope, _span(prev_since, prev_until), live, groups=groups))


def _trend(cur: dict[str, Any], prev: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {k: {"current": cur[k], "previous": prev[k]} for k in cur}


async def trend(db: AsyncSession, grant: Grant, since: date, until: date, *, zone: str,
                now: datetime) -> dict[str, dict[str, Any]]:
    """The cockpit's scalar figures over the grant's scope, each beside the previous period."""
    scope = await resolve(db, grant)
    cur, prev = await _periods(db, scope, since, until, zone=zone, now=now)
    return _trend(cur.scalars(SCOPE), prev.scalars(SCOPE))


async def cockpit_report(db: AsyncSession, grant: Grant, *, since: date, until: date, by: str | None, zone: str,
                         now: datetime, playbook: Playbook | None = None) -> dict[str, Any]:
    """The cockpit page's figures (:func:`handlers.console.cockpit.cockpit`); by unit, the scalar
    figures of each unit beside the previous period."""
    if by is None:
        return await cockpit(db, grant, since=since, until=until, today=today_in(zone, now), now=now, zone=zone)
    scope = await resolve(db, grant)
    by_unit = units(scope.members, by)
    cur, prev = await _periods(db, scope, since, until, zone=zone, now=now,
                               groups={u: unit for unit, (_label, users) in by_unit.items() for u in users})
    n = (until - since).days + 1
    rows = [{"unit": unit, "label": label, "managers": len(users),
             **_trend(cur.scalars(group_level(unit), users), prev.scalars(group_level(unit), users))}
            for unit, (label, users) in by_unit.items()]
    period = {**_period(since, until), "previous_since": (since - timedelta(days=n)).isoformat(),
              "previous_until": (since - timedelta(days=1)).isoformat()}
    return {"period": period, "scope": _scope(scope), "by": by, "rows": rows}


# -- tasks ------------------------------------------------------------------------------------

TASK_FIGURES = ("issued", *STATUSES, "overdue")


async def tasks_report(db: AsyncSession, grant: Grant, *, since: date, until: date, by: str | None, zone: str,
                       now: datetime, playbook: Playbook | None = None) -> dict[str, Any]:
    """The tasks page's counts (task cards of the days ``since``..``until``, by their status now):
    issued, open, snoozed, done, not relevant, escalated, and overdue — open or snoozed with a
    day before today."""
    scope = await resolve(db, grant)
    today = today_in(zone, now)
    per_user: dict[str, dict[str, int]] = {}
    for row in (await db.execute(task_counts(grant, since, until))).mappings():
        counts = {k: int(row[k] or 0) for k in ("issued", *STATUSES, "overdue")}
        if until < today:  # every card of a past period has a day before today
            counts["overdue"] = counts["open"] + counts["snoozed"]
        per_user[row["userid"]] = counts

    def total(users: set[str] | None) -> dict[str, int]:
        return {k: sum(c[k] for u, c in per_user.items() if users is None or u in users) for k in TASK_FIGURES}

    out: dict[str, Any] = {"period": _period(since, until), "scope": _scope(scope)}
    if by is None:
        return {**out, "figures": total(None)}
    rows = [{"unit": unit, "label": label, "managers": len(users), **total(users)}
            for unit, (label, users) in units(scope.members, by).items()]
    return {**out, "by": by, "rows": rows}


# -- customer feedback (NPS, satisfaction) ------------------------------------------------------

def _feedback_figures(answers: list[tuple[str, str, str, int]]) -> list[dict[str, Any]]:
    """Per survey (sorted): answers, promoters, passives, detractors and, for an NPS survey, the
    NPS (promoters − detractors, per cent of answers); for a satisfaction survey, the mean score."""
    out = []
    for survey in sorted({a[0] for a in answers}):
        mine = [a for a in answers if a[0] == survey]
        counts = {c: sum(1 for a in mine if a[2] == c) for c in ("promoter", "passive", "detractor")}
        n = len(mine)
        nps = round((counts["promoter"] - counts["detractor"]) * 100 / n, 1) if mine[0][1] == "nps" else None
        mean = round(sum(a[3] for a in mine) / n, 2) if mine[0][1] != "nps" else None
        out.append({"survey": survey, "kind": mine[0][1], "answers": n, "promoters": counts["promoter"],
                    "passives": counts["passive"], "detractors": counts["detractor"], "nps": nps, "mean": mean})
    return out


async def feedback_report(db: AsyncSession, grant: Grant, *, since: date, until: date, by: str | None, zone: str,
                          now: datetime, playbook: Playbook | None = None) -> dict[str, Any]:
    """Survey answers of the local days ``since``..``until`` (``sop/feedback.yaml``), credited to
    the manager who sent the survey's link: per survey, the answers by category and the NPS (or,
    for a satisfaction survey, the mean score); an answer no manager in the bank sent counts for
    the whole bank only."""
    scope = await resolve(db, grant)
    rows = (await db.execute(select(FeedbackAnswer.survey, FeedbackAnswer.kind, FeedbackAnswer.category,
                                    FeedbackAnswer.score, FeedbackAnswer.sender)
                             .where(FeedbackAnswer.day >= since, FeedbackAnswer.day <= until))).all()
    answers = [(survey, kind, category, int(score), sender) for survey, kind, category, score, sender in rows
               if scope.whole_bank or sender in scope.members]

    def figures(users: set[str] | None) -> list[dict[str, Any]]:
        return _feedback_figures([a[:4] for a in answers if users is None or a[4] in users])

    out: dict[str, Any] = {"period": _period(since, until), "scope": _scope(scope)}
    if by is None:
        return {**out, "surveys": figures(None)}
    return {**out, "by": by, "rows": [{"unit": unit, "label": label, "managers": len(users), "surveys": figures(users)}
                                      for unit, (label, users) in units(scope.members, by).items()]}


# -- a report computed for one grant ---------------------------------------------------------

def scoped(fn: Callable[..., Awaitable[dict[str, Any]]]) -> Compute:
    """A registry entry for ``fn(db, grant, *, since, until, zone)`` (``now=`` and ``playbook=``
    too when it takes them). ``--by branch|team`` computes it once per unit at that level, the
    grant narrowed to the unit (members sitting above the level are in no row); ``--by manager``
    is refused, as a grant cannot name one member. A ValueError of ``fn`` is bad input."""
    takes = set(inspect.signature(fn).parameters) & {"now", "playbook"}

    async def compute(db: AsyncSession, grant: Grant, *, since: date, until: date, by: str | None, zone: str,
                      now: datetime, playbook: Playbook | None) -> dict[str, Any]:
        extra = {k: v for k, v in (("now", now), ("playbook", playbook)) if k in takes}

        async def one(g: Grant) -> dict[str, Any]:
            try:
                return await fn(db, g, since=since, until=until, zone=zone, **extra)
            except (BadScope, BadAsk):
                raise
            except ValueError as exc:
                raise BadAsk(str(exc).splitlines()[0] if str(exc) else "bad input") from None

        if by is None:
            return await one(grant)
        if by == "manager":
            raise BadAsk("this report is per department: by branch or team, not manager")
        scope = await resolve(db, grant)
        rows = []
        for unit, (label, users) in units(scope.members, by).items():
            if unit.count("/") + 1 < LEVELS[by]:
                continue
            data = await one(narrowed(grant, unit))
            rows.append({"unit": unit, "label": label, "managers": len(users), "report": data})
        return {"period": _period(since, until), "scope": _scope(scope), "by": by, "rows": rows}

    return compute


REPORTS: dict[str, Report] = {report.name: report for report in (
    Report("cockpit", "驾驶舱：新增、流失、净增、入群退群、SOP 触达与跳过、任务、雷达、留存（与上一周期对比）",
           cockpit_report),
    Report("tasks", "任务卡：下发、待办、延后、完成、无需处理、已升级、逾期", tasks_report),
    Report("effect", "SOP 效果：每个 SOP 步骤的目标、发送、跳过、送达、打开、转化", scoped(sop_effect)),
    Report("feedback", "客户反馈：各问卷的答卷、推荐者、中立者、贬损者与 NPS（满意度问卷为平均分）", feedback_report),
)}
