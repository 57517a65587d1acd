"""The cockpit's figures (驾驶舱) for a period and a scope, with the previous period beside them.

One function, :func:`cockpit`, computes them for the page and for ``scrm report cockpit``, so
both always say the same. Figures come from the daily roll-up (:mod:`handlers.console.rollup`):
stored days are read, and only today's partial day — or a past day the nightly job has not
rolled up yet — is computed live from the raw rows, with the same function the job uses.
The result is plain JSON data (sorted, no floats but rates rounded to 4 places), so two runs
over the same rows give byte-identical output.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.console import rollup as r
from handlers.console.access import Grant
from handlers.console.models import ConsoleRollup
from handlers.console.reasons import LABELS
from handlers.console.scope import Scope, child_of, resolve, under
from handlers.contacts.api import Member

PERIODS = (7, 30, 90)
Daily = dict[date, r.Figures]


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


async def load_days(db: AsyncSession, scope: Scope, first: date, last: date, *, today: date, now: datetime,
                    zone: str) -> Daily:
    """Each day's figures in ``scope``: stored roll-ups, and live ones for today (up to ``now``)
    and for any past day not rolled up yet."""
    out: Daily = defaultdict(dict)
    q = select(ConsoleRollup.day, ConsoleRollup.userid, ConsoleRollup.metric, ConsoleRollup.key,
               ConsoleRollup.value).where(ConsoleRollup.day >= first, ConsoleRollup.day <= last)
    if scope.manager:
        q = q.where(ConsoleRollup.userid == scope.manager)
    elif not scope.whole_bank:
        q = q.join(Member, Member.userid == ConsoleRollup.userid).where(under(scope.dept))
    for day, userid, metric, key, value in (await db.execute(q)).all():
        out[day][(userid, metric, key)] = int(value)
    stored = await r.stored_days(db, first, min(last, today - timedelta(days=1)))
    for day in _days(first, min(last, today)):
        if day in stored:
            continue
        live = await r.compute_day(db, day, zone, until=now if day == today else None)
        out[day] = {k: v for k, v in live.values.items() if scope.whole_bank or k[0] in scope.members}
    return out


def merge(daily: Daily, days: Iterable[date]) -> r.Figures:
    total: r.Figures = defaultdict(int)
    for day in days:
        for k, v in daily.get(day, {}).items():
            total[k] += v
    return total


def median_seconds(histogram: dict[int, int]) -> float | None:
    """The exact median of a histogram of seconds (the mean of the middle two for an even count)."""
    n = sum(histogram.values())
    if n == 0:
        return None
    wanted = sorted({(n - 1) // 2, n // 2})
    found: list[int] = []
    seen = 0
    for seconds in sorted(histogram):
        count = histogram[seconds]
        found.extend(seconds for i in wanted if seen <= i < seen + count)
        seen += count
    return sum(found) / len(found)


def rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def figures(fig: r.Figures, userids: set[str] | None = None) -> dict[str, Any]:
    """The scalar figures of summed rows (of ``userids`` only, when given)."""
    sums: dict[str, int] = defaultdict(int)
    distinct: dict[str, set[str]] = defaultdict(set)
    secs: dict[int, int] = defaultdict(int)
    for (userid, metric, key), v in fig.items():
        if userids is not None and userid not in userids:
            continue
        if metric in r.DISTINCT:
            distinct[metric].add(key)
        elif metric == r.TASK_DONE_SECS:
            secs[int(key)] += v
        elif metric != r.RETAINED:
            sums[metric] += v
    added, lost, removed = sums[r.ADDED], sums[r.LOST], sums[r.REMOVED]
    sends, openers = sums[r.RADAR_SEND], len(distinct[r.RADAR_OPENER])
    return {
        "added": added, "lost": lost, "removed": removed, "net": added - lost - removed,
        "group_joins": sums[r.GROUP_JOIN], "group_quits": sums[r.GROUP_QUIT],
        "group_net": sums[r.GROUP_JOIN] - sums[r.GROUP_QUIT],
        "reach_customers": len(distinct[r.REACH_CUSTOMER]), "reach_groups": len(distinct[r.REACH_GROUP]),
        "skips": sums[r.SKIP],
        "tasks_issued": sums[r.TASK_ISSUED], "tasks_done": sums[r.TASK_DONE],
        "tasks_not_relevant": sums[r.TASK_NOT_RELEVANT], "tasks_escalated": sums[r.TASK_ESCALATED],
        "tasks_median_done_s": median_seconds(secs),
        "radar_sends": sends, "radar_opens": sums[r.RADAR_OPEN], "radar_openers": openers,
        "radar_open_rate": rate(openers, sends),
    }


def _by_key(fig: r.Figures, metric: str) -> dict[str, int]:
    out: dict[str, int] = defaultdict(int)
    for (_u, m, key), v in fig.items():
        if m == metric:
            out[key] += v
    return out


def retention(daily: Daily, since: date, today: date) -> list[dict[str, Any]]:
    """Weekly cohorts (Monday to Sunday) from the week of ``since`` to this week: relations added,
    and of them, still active 1, 7 and 30 days after being added. A rate is given only once
    every day of the cohort is N days past (complete days), else None."""
    out = []
    yesterday = today - timedelta(days=1)
    week = since - timedelta(days=since.weekday())
    while week <= today:
        days = [week + timedelta(days=i) for i in range(7)]
        added = sum(v for d in days for (_u, m, _k), v in daily.get(d, {}).items() if m == r.ADDED)
        row: dict[str, Any] = {"week": week.isoformat(), "added": added}
        for n in r.RETENTION_DAYS:
            if days[-1] + timedelta(days=n) > yesterday:
                row[f"d{n}"] = None
                continue
            kept = sum(v for d in days for (_u, m, k), v in daily.get(d + timedelta(days=n), {}).items()
                       if m == r.RETAINED and k == f"d{n}")
            row[f"d{n}"] = {"retained": kept, "rate": rate(kept, added)}
        out.append(row)
        week += timedelta(days=7)
    return out


def _trend(cur: dict[str, Any], prev: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {k: {"current": cur[k], "previous": prev[k]} for k in cur}


def _ranked(rows: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    rows.sort(key=lambda x: (-x["net"], -x["added"], -x["reach_customers"], x[name]))
    for i, row in enumerate(rows, 1):
        row["rank"] = i
    return rows


_RANK_FIELDS = ("added", "lost", "removed", "net", "reach_customers", "tasks_issued", "tasks_done", "radar_opens",
                "radar_open_rate")


def rankings(fig: r.Figures, scope: Scope) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Teams (the departments one level below the scope) and managers, best net growth first."""
    managers = []
    for userid, (name, dept) in scope.members.items():
        f = figures(fig, {userid})
        managers.append({"userid": userid, "name": name, "department": dept, **{k: f[k] for k in _RANK_FIELDS}})
    teams: list[dict[str, Any]] = []
    if not scope.manager:
        children: dict[str, set[str]] = defaultdict(set)
        for userid, (_name, dept) in scope.members.items():
            children[child_of(scope.dept, dept)].add(userid)
        for path, users in children.items():
            f = figures(fig, users)
            teams.append({"department": path, "managers": len(users), **{k: f[k] for k in _RANK_FIELDS}})
    return _ranked(teams, "department"), _ranked(managers, "userid")


async def cockpit(db: AsyncSession, grant: Grant, *, today: date, now: datetime, zone: str, days: int | None = None,
                  since: date | None = None, until: date | None = None, dept: str = "",
                  manager: str = "") -> dict[str, Any]:
    """Every figure of the cockpit for ``days`` ending ``today`` — or for the days ``since`` to
    ``until`` (a report's explicit period, ending today at the latest) — in the part of the bank
    asked for (within ``grant``: :class:`~handlers.console.scope.ScopeRefused` otherwise)."""
    if since is None:
        if days not in PERIODS:
            raise ValueError(f"days must be one of {', '.join(map(str, PERIODS))}")
        since, until = today - timedelta(days=days - 1), today
    until = until or today
    if not since <= until <= today:
        raise ValueError("the period must end today at the latest and not before it starts")
    days = (until - since).days + 1
    scope = await resolve(db, grant, dept=dept, manager=manager)
    prev_since, prev_until = since - timedelta(days=days), since - timedelta(days=1)
    first = min(prev_since, since - timedelta(days=since.weekday()))
    # A past period reads nothing after its end: its figures are those its last day could know.
    daily = await load_days(db, scope, first, until, today=today, now=now, zone=zone)
    current, previous = _days(since, until), _days(prev_since, prev_until)
    cur, prev = merge(daily, current), merge(daily, previous)
    added_c, added_p, lost_c, lost_p = (_by_key(cur, r.ADDED), _by_key(prev, r.ADDED), _by_key(cur, r.LOST),
                                        _by_key(prev, r.LOST))
    channels = sorted(set(added_c) | set(added_p) | set(lost_c) | set(lost_p))
    skips_c, skips_p = _by_key(cur, r.SKIP), _by_key(prev, r.SKIP)
    teams, managers = rankings(cur, scope)
    return {
        "period": {"days": days, "since": since.isoformat(), "until": until.isoformat(),
                   "previous_since": prev_since.isoformat(), "previous_until": prev_until.isoformat()},
        "scope": {"dept": scope.dept, "manager": scope.manager, "label": scope.label},
        "figures": _trend(figures(cur), figures(prev)),
        "channels": [{"channel": c, "added": {"current": added_c.get(c, 0), "previous": added_p.get(c, 0)},
                      "lost": {"current": lost_c.get(c, 0), "previous": lost_p.get(c, 0)}} for c in channels],
        "skips": [{"reason": k, "label": label, "current": skips_c.get(k, 0), "previous": skips_p.get(k, 0)}
                  for k, label in LABELS.items()],
        "daily": [{"day": d.isoformat(), **{k: v for k, v in figures(daily.get(d, {})).items()
                                            if k in ("added", "lost", "removed", "net")}} for d in current],
        "retention": retention(daily, since, until),
        "teams": teams,
        "managers": managers,
    }
