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
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import String, and_, column, func, select, true, values
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.console import periodcache
from handlers.console import rollup as r
from handlers.console.access import Grant
from handlers.console.livecache import LiveReader
from handlers.console.models import ConsoleRollup
from handlers.console.reasons import LABELS
from handlers.console.scope import Scope, child_of, resolve, under
from handlers.console.viewcache import ViewCache, view_key
from handlers.contacts.api import Member

PERIODS = (7, 30, 90)
#: How far back a page's period reaches: the longest one, its previous period and the first
#: week of its retention cohorts.
SEEN_SPAN_DAYS = 2 * max(PERIODS) + 7
Daily = dict[date, r.Figures]


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def median_seconds(histogram: dict[int, int]) -> float | None:
    """The exact median of a histogram of seconds (the mean of the middle two for an even count)."""
    n = sum(histogram.values())
    if n == 0:
        return None
    low_i, high_i = (n - 1) // 2, n // 2  # the middle positions (equal for an odd count)
    low: int | None = None
    seen = 0
    for seconds in sorted(histogram):  # called for every team of a view: a plain running count
        seen += histogram[seconds]
        if low is None and seen > low_i:
            low = seconds
        if seen > high_i:  # both middle values found (low too: low_i <= high_i): the rest cannot change them
            assert low is not None
            return (low + seconds) / 2
    raise AssertionError("unreachable: the last bucket reaches n")


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
    return scalars(sums, {m: len(keys) for m, keys in distinct.items()}, secs)


def scalars(sums: Mapping[str, int], distinct: Mapping[str, int], secs: Mapping[int, int]) -> dict[str, Any]:
    """The figures from summed metrics, distinct counts and the histogram of seconds to done."""
    def total(metric: str) -> int:
        return int(sums.get(metric, 0))

    added, lost, removed = total(r.ADDED), total(r.LOST), total(r.REMOVED)
    sends, openers = total(r.RADAR_SEND), distinct.get(r.RADAR_OPENER, 0)
    return {
        "added": added, "lost": lost, "removed": removed, "net": added - lost - removed,
        "group_joins": total(r.GROUP_JOIN), "group_quits": total(r.GROUP_QUIT),
        "group_net": total(r.GROUP_JOIN) - total(r.GROUP_QUIT),
        "reach_customers": distinct.get(r.REACH_CUSTOMER, 0), "reach_groups": distinct.get(r.REACH_GROUP, 0),
        "skips": total(r.SKIP),
        "tasks_issued": total(r.TASK_ISSUED), "tasks_done": total(r.TASK_DONE),
        "tasks_not_relevant": total(r.TASK_NOT_RELEVANT), "tasks_escalated": total(r.TASK_ESCALATED),
        "tasks_median_done_s": median_seconds(dict(secs)),
        "radar_sends": sends, "radar_opens": total(r.RADAR_OPEN), "radar_openers": openers,
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


# --- a period's figures, summed and counted by the database ---------------------------------
#
# A period's stored days are summed (and distinct customers counted) in SQL, per manager, per
# team and for the scope, so the page reads a few thousand rows however many customers the bank
# has, never the per-customer rows themselves. Days without a stored roll-up (today, a day the
# nightly job has not reached) are computed live, as before; a customer counted distinct both in
# a live day and in a stored one is found by looking up only the live day's keys.

SCOPE = ""  # the level key of the whole scope in Period.distinct
DAILY_METRICS = (r.ADDED, r.LOST, r.REMOVED, r.RETAINED)
KEYED = (r.ADDED, r.LOST, r.SKIP, r.TASK_DONE_SECS)  # the metrics the page splits by key
_CHUNK = 500


def _user(userid: str) -> str:
    return "u:" + userid


def group_level(group: str) -> str:
    """The level key of a group of managers (a team of the ranking, a unit of a report)."""
    return "g:" + group


@dataclass
class Period:
    """One period's figures in a scope: summed metrics per manager (``sums``: userid → metric →
    value; ``keyed``: metric → key → value over the scope, for channels and skip reasons), the
    histogram of seconds to done of the scope (``secs``) and of each group (``group_secs``), and
    distinct counts per level (:data:`SCOPE`, a manager ``u:…``, a group of managers ``g:…``)."""

    sums: dict[str, dict[str, int]] = field(default_factory=lambda: defaultdict(lambda: defaultdict(int)))
    keyed: dict[str, dict[str, int]] = field(default_factory=lambda: defaultdict(lambda: defaultdict(int)))
    secs: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    distinct: dict[str, dict[str, int]] = field(default_factory=lambda: defaultdict(lambda: defaultdict(int)))
    group_secs: dict[str, dict[int, int]] = field(default_factory=lambda: defaultdict(lambda: defaultdict(int)))

    def add(self, userid: str, metric: str, key: str, value: int) -> None:
        if metric == r.TASK_DONE_SECS:
            self.secs[int(key)] += value
        elif metric not in r.DISTINCT and metric != r.RETAINED:
            self.sums[userid][metric] += value
            if metric in KEYED:
                self.keyed[metric][key] += value

    def to_json(self) -> dict[str, Any]:
        """Plain JSON (what :mod:`handlers.console.periodcache` keeps)."""
        return {"sums": {u: dict(m) for u, m in self.sums.items()},
                "keyed": {m: dict(k) for m, k in self.keyed.items()},
                "secs": {str(k): v for k, v in self.secs.items()},
                "distinct": {lvl: dict(m) for lvl, m in self.distinct.items()},
                "group_secs": {lvl: {str(k): v for k, v in h.items()} for lvl, h in self.group_secs.items()}}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Period:
        out = cls()
        for u, per_metric in data["sums"].items():
            out.sums[u].update(per_metric)
        for m, per_key in data["keyed"].items():
            out.keyed[m].update(per_key)
        out.secs.update({int(k): v for k, v in data["secs"].items()})
        for lvl, per_metric in data["distinct"].items():
            out.distinct[lvl].update(per_metric)
        for lvl, h in data["group_secs"].items():
            out.group_secs[lvl].update({int(k): v for k, v in h.items()})
        return out

    def scalars(self, level: str, userids: Iterable[str] | None = None) -> dict[str, Any]:
        """The figures of the whole scope (``userids`` None) or of some of its managers."""
        if userids is None:
            totals: dict[str, int] = defaultdict(int)
            for per_user in self.sums.values():
                for m, v in per_user.items():
                    totals[m] += v
        else:
            totals = defaultdict(int)
            for u in userids:
                for m, v in self.sums.get(u, {}).items():
                    totals[m] += v
        return scalars(totals, self.distinct.get(level, {}),
                       self.secs if level == SCOPE else self.group_secs.get(level, {}))


def _in_scope(q: Any, scope: Scope) -> Any:
    if scope.manager:
        return q.where(ConsoleRollup.userid == scope.manager)
    if not scope.whole_bank:
        return q.join(Member, Member.userid == ConsoleRollup.userid).where(under(scope.dept))
    return q


def team_of(scope: Scope) -> dict[str, str]:
    """userid → the team (one level below the scope) they count in; empty for one manager."""
    return {} if scope.manager else {u: child_of(scope.dept, dept) for u, (_n, dept) in scope.members.items()}


#: The whole bank's stored rows (userid, metric, key) of these days for the live days' distinct keys.
SeenRows = Callable[[list[date]], Awaitable[list[tuple[str, str, str]]]]


async def load_period(db: AsyncSession, scope: Scope, days: list[date], live: Daily, *, per_user: bool = False,
                      groups: Mapping[str, str] | None = None, bank_seen: SeenRows | None = None) -> Period:
    """The figures of ``days`` in ``scope``: stored days summed in SQL, ``live`` days added.
    Distinct counts are made for the scope, and also per manager with ``per_user`` and per group
    of ``groups`` (userid → group: the ranking's teams, a report's units) when given — a
    customer two managers of one group reached counts once for the group."""
    live_days = sorted(d for d in days if d in live)
    stored = and_(ConsoleRollup.day >= days[0], ConsoleRollup.day <= days[-1],
                  ConsoleRollup.day.not_in(live_days) if live_days else true())
    distinct_metrics = sorted(r.DISTINCT)
    teams = dict(groups or {})
    # The stored days' part: kept from an earlier view while those days keep their roll-up.
    stored_days = [d for d in days if d not in live]
    cache = periodcache.cache_key("period", dept=scope.dept, manager=scope.manager, userids=list(scope.members),
                                  days=stored_days, groups=teams, per_user=per_user)
    print_ = await periodcache.fingerprint(db, stored_days)
    cached = await periodcache.get(db, cache, print_)
    if cached is not None:
        out = Period.from_json(cached)
    else:
        out = await _stored_period(db, scope, stored, per_user=per_user, teams=teams)
        await periodcache.put(db, cache, stored_days, print_, out.to_json())
    # Live days: their sums add up; their distinct keys count where no stored day had them.
    fresh: dict[tuple[str, str], set[str]] = defaultdict(set)  # (metric, key) → userids of the live days
    for day in live_days:
        for (userid, metric, key), value in live[day].items():
            if metric in r.DISTINCT:
                fresh[(metric, key)].add(userid)
            else:
                out.add(userid, metric, key, value)
                if metric == r.TASK_DONE_SECS and userid in teams:
                    out.group_secs[group_level(teams[userid])][int(key)] += value
    seen: dict[tuple[str, str], set[str]] = defaultdict(set)  # the same, in the stored days
    if fresh and bank_seen is not None:  # the whole bank's, shared by every scope: narrowed here
        for userid, metric, key in await bank_seen(stored_days):
            if (metric, key) in fresh and (scope.whole_bank or userid in scope.members):
                seen[(metric, key)].add(userid)
        fresh_keys: list[str] = []
    else:
        fresh_keys = sorted({key for _m, key in fresh})
    keys = fresh_keys
    wanted = set(stored_days)
    for i in range(0, len(keys), _CHUNK):
        # Every day's rows of these keys, the period's picked here: with the days in the SQL, a
        # prepared statement's generic plan walked the primary key (day first) over the whole
        # period testing each row against the 500 keys (6 s on 1,000,000 customers); by metric
        # and key alone only ix_console_rollup_metric_key can serve it (a probe per key).
        had = select(ConsoleRollup.userid, ConsoleRollup.metric, ConsoleRollup.key, ConsoleRollup.day).where(
            ConsoleRollup.metric.in_(distinct_metrics), ConsoleRollup.key.in_(keys[i:i + _CHUNK]))
        for userid, metric, key, day in (await db.execute(_in_scope(had, scope))).all():
            if day in wanted:
                seen[(metric, key)].add(userid)
    for (metric, key), users in fresh.items():
        before = seen.get((metric, key), set())
        new_levels = {_user(u) for u in users} - {_user(u) for u in before} if per_user else set()
        new_levels |= ({group_level(teams[u]) for u in users if u in teams}
                       - {group_level(teams[u]) for u in before if u in teams})
        if not before:
            new_levels.add(SCOPE)
        for level in new_levels:
            out.distinct[level][metric] += 1
    return out


async def bank_seen_rows(db: AsyncSession, live: Daily, days: list[date]) -> list[tuple[str, str, str]]:
    """The whole bank's stored rows of ``days`` holding a distinct key one of ``live``'s days has
    (who had counted that customer already): what :func:`load_period` looks up for its scope."""
    wanted = set(days)
    return [(userid, metric, key) for userid, metric, key, day in await bank_seen_all(db, live) if day in wanted]


async def bank_seen_all(db: AsyncSession, live: Daily) -> list[tuple[str, str, str, date]]:
    """The whole bank's stored rows, of every day, holding a distinct key one of ``live``'s days
    has, with their day: one lookup serves every period (each keeps its own days)."""
    keys = sorted({key for values in live.values() for (_u, metric, key) in values if metric in r.DISTINCT})
    out: list[tuple[str, str, str, date]] = []
    for i in range(0, len(keys), _CHUNK):  # as in load_period: by metric and key, the days picked after
        had = select(ConsoleRollup.userid, ConsoleRollup.metric, ConsoleRollup.key, ConsoleRollup.day).where(
            ConsoleRollup.metric.in_(sorted(r.DISTINCT)), ConsoleRollup.key.in_(keys[i:i + _CHUNK]))
        out.extend((userid, metric, key, day) for userid, metric, key, day in (await db.execute(had)).all())
    return out


async def _stored_period(db: AsyncSession, scope: Scope, stored: Any, *, per_user: bool,
                         teams: Mapping[str, str]) -> Period:
    """The figures of the stored days (``stored``: the SQL condition on them), summed and counted
    by the database."""
    out = Period()
    distinct_metrics = sorted(r.DISTINCT)
    # Per manager, each metric summed (the rankings); over the scope, the metrics split by key
    # (channels, skip reasons) and the histogram of seconds to done (the median).
    summed = (select(ConsoleRollup.userid, ConsoleRollup.metric, func.sum(ConsoleRollup.value))
              .where(stored, ConsoleRollup.metric.not_in([*distinct_metrics, r.RETAINED, r.TASK_DONE_SECS]))
              .group_by(ConsoleRollup.userid, ConsoleRollup.metric))
    for userid, metric, value in (await db.execute(_in_scope(summed, scope))).all():
        out.sums[userid][metric] += int(value)
    by_key = (select(ConsoleRollup.metric, ConsoleRollup.key, func.sum(ConsoleRollup.value))
              .where(stored, ConsoleRollup.metric.in_(KEYED))
              .group_by(ConsoleRollup.metric, ConsoleRollup.key))
    for metric, key, value in (await db.execute(_in_scope(by_key, scope))).all():
        if metric == r.TASK_DONE_SECS:
            out.secs[int(key)] += int(value)
        else:
            out.keyed[metric][key] += int(value)
    counted = func.count(ConsoleRollup.key.distinct())
    scope_counts = select(ConsoleRollup.metric, counted).where(stored, ConsoleRollup.metric.in_(distinct_metrics))
    for metric, n in (await db.execute(_in_scope(scope_counts.group_by(ConsoleRollup.metric), scope))).all():
        out.distinct[SCOPE][metric] += int(n)
    if per_user:
        user_counts = (select(ConsoleRollup.userid, ConsoleRollup.metric, counted)
                       .where(stored, ConsoleRollup.metric.in_(distinct_metrics))
                       .group_by(ConsoleRollup.userid, ConsoleRollup.metric))
        for userid, metric, n in (await db.execute(_in_scope(user_counts, scope))).all():
            out.distinct[_user(userid)][metric] += int(n)
    if teams:
        # Which group each manager counts in, as a table joined on userid (a CASE of hundreds of
        # branches would be evaluated row by row).
        group_table = values(column("userid", String), column("grp", String), name="manager_group").data(
            sorted(teams.items())).cte("manager_group")
        group_counts = (select(group_table.c.grp, ConsoleRollup.metric, counted)
                        .join(group_table, group_table.c.userid == ConsoleRollup.userid)
                        .where(stored, ConsoleRollup.metric.in_(distinct_metrics))
                        .group_by(group_table.c.grp, ConsoleRollup.metric))
        for group, metric, n in (await db.execute(group_counts)).all():
            out.distinct[group_level(group)][metric] += int(n)
        group_secs = (select(group_table.c.grp, ConsoleRollup.key, func.sum(ConsoleRollup.value))
                      .join(group_table, group_table.c.userid == ConsoleRollup.userid)
                      .where(stored, ConsoleRollup.metric == r.TASK_DONE_SECS)
                      .group_by(group_table.c.grp, ConsoleRollup.key))
        for group, key, value in (await db.execute(group_secs)).all():
            out.group_secs[group_level(group)][int(key)] += int(value)
    return out


async def load_daily(db: AsyncSession, scope: Scope, first: date, last: date, live: Daily) -> Daily:
    """Day by day, over the scope, the metrics the daily chart and the retention cohorts read."""
    out: Daily = defaultdict(dict)
    live_days = sorted(d for d in live if first <= d <= last)
    stored_days = [d for d in _days(first, last) if d not in live]
    cache = periodcache.cache_key("daily", dept=scope.dept, manager=scope.manager, userids=list(scope.members),
                                  days=stored_days)
    print_ = await periodcache.fingerprint(db, stored_days)
    rows = await periodcache.get(db, cache, print_)
    if rows is None:
        q = (select(ConsoleRollup.day, ConsoleRollup.metric, ConsoleRollup.key, func.sum(ConsoleRollup.value))
             .where(ConsoleRollup.day >= first, ConsoleRollup.day <= last, ConsoleRollup.metric.in_(DAILY_METRICS),
                    ConsoleRollup.day.not_in(live_days) if live_days else true())
             .group_by(ConsoleRollup.day, ConsoleRollup.metric, ConsoleRollup.key))
        rows = [[day.isoformat(), metric, key, int(value)]
                for day, metric, key, value in (await db.execute(_in_scope(q, scope))).all()]
        await periodcache.put(db, cache, stored_days, print_, rows)
    for day, metric, key, value in rows:
        out[date.fromisoformat(day)][("", metric, key)] = int(value)
    for day in live_days:
        summed: dict[tuple[str, str, str], int] = defaultdict(int)
        for (_u, metric, key), value in live[day].items():
            if metric in DAILY_METRICS:
                summed[("", metric, key)] += value
        out[day] = dict(summed)
    return out


async def live_days(db: AsyncSession, scope: Scope, first: date, last: date, *, today: date, now: datetime,
                    zone: str, reader: LiveReader | None = None) -> Daily:
    """The days in [first, last] without a stored roll-up, computed from the raw rows (today up
    to ``now``) — or kept a short while by ``reader``'s cache — within the scope."""
    return within(scope, await bank_live_days(db, first, last, today=today, now=now, zone=zone, reader=reader))


async def bank_live_days(db: AsyncSession, first: date, last: date, *, today: date, now: datetime, zone: str,
                         reader: LiveReader | None = None, rolled: Mapping[date, datetime] | None = None) -> Daily:
    """:func:`live_days` of the whole bank (the figures as computed or kept: never to be changed);
    ``rolled``: the stored days of a span holding ``first``..``last`` as just read
    (:func:`~handlers.console.periodcache.rolled_up`), else they are read here."""
    out: Daily = {}
    reader = reader or LiveReader()
    until = min(last, today - timedelta(days=1))
    stored = (await r.stored_days(db, first, until) if rolled is None
              else {d for d in rolled if first <= d <= until})
    for day in _days(first, min(last, today)):
        if day not in stored:
            async def compute(day: date = day) -> r.Figures:
                return (await r.compute_day(db, day, zone, until=now if day == today else None)).values
            out[day] = await reader.day(day, today, now, zone, compute)
    return out


def within(scope: Scope, bank: Daily) -> Daily:
    """The whole bank's live days narrowed to ``scope``'s managers (the bank's own rows, unchanged
    and uncopied, for the whole bank: the readers only iterate them)."""
    if scope.whole_bank:
        return bank
    return {day: {k: v for k, v in values.items() if k[0] in scope.members} for day, values in bank.items()}


def _trend(cur: dict[str, Any], prev: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {k: {"current": cur[k], "previous": prev[k]} for k in cur}


def _ranked(rows: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    rows.sort(key=lambda x: (-x["net"], -x["added"], -x["reach_customers"], x[name]))
    for i, row in enumerate(rows, 1):
        row["rank"] = i
    return rows


_RANK_FIELDS = ("added", "lost", "removed", "net", "reach_customers", "tasks_issued", "tasks_done", "radar_opens",
                "radar_open_rate")


def rankings(period: Period, scope: Scope) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Teams (the departments one level below the scope) and managers, best net growth first."""
    managers = []
    for userid, (name, dept) in scope.members.items():
        f = period.scalars(_user(userid), [userid])
        managers.append({"userid": userid, "name": name, "department": dept, **{k: f[k] for k in _RANK_FIELDS}})
    teams: list[dict[str, Any]] = []
    children: dict[str, set[str]] = defaultdict(set)
    for userid, path in team_of(scope).items():
        children[path].add(userid)
    for path, users in children.items():
        f = period.scalars(group_level(path), users)
        teams.append({"department": path, "managers": len(users), **{k: f[k] for k in _RANK_FIELDS}})
    return _ranked(teams, "department"), _ranked(managers, "userid")


async def _load(db: AsyncSession, scope: Scope, since: date, until: date, live: Daily,
                bank_seen: SeenRows | None = None) -> tuple[Period, Period, Daily]:
    """The current period, the previous one and the daily series (from the first day a
    retention cohort of the period needs) of ``since``–``until``."""
    days = (until - since).days + 1
    prev_since, prev_until = since - timedelta(days=days), since - timedelta(days=1)
    first = min(prev_since, since - timedelta(days=since.weekday()))
    return (await load_period(db, scope, _days(since, until), live, per_user=True, groups=team_of(scope),
                              bank_seen=bank_seen),
            await load_period(db, scope, _days(prev_since, prev_until), live, bank_seen=bank_seen),
            await load_daily(db, scope, first, until, live))


async def warm(db: AsyncSession, grant: Grant, *, today: date, days: int, dept: str = "") -> None:
    """Keep the stored part of the cockpit of ``days`` ending ``today`` (the nightly job, for the
    day's first views) of ``dept`` (default: the grant's scope): the same reads as
    :func:`cockpit`, without computing any live day — only which days are live matters to what
    is kept, not their figures."""
    since = today - timedelta(days=days - 1)
    scope = await resolve(db, grant, dept=dept)
    first = min(since - timedelta(days=days), since - timedelta(days=since.weekday()))
    stored = await r.stored_days(db, first, today - timedelta(days=1))
    await _load(db, scope, since, today, {d: {} for d in _days(first, today) if d not in stored})


async def cockpit(db: AsyncSession, grant: Grant, *, today: date, now: datetime, zone: str, days: int | None = None,
                  since: date | None = None, until: date | None = None, dept: str = "",
                  manager: str = "", reader: LiveReader | None = None,
                  views: ViewCache | None = None) -> dict[str, Any]:
    """Every figure of the cockpit for ``days`` ending ``today`` — or for the days ``since`` to
    ``until`` (a report's explicit period, ending today at the latest) — in the part of the bank
    asked for (within ``grant``: :class:`~handlers.console.scope.ScopeRefused` otherwise).
    ``reader`` gives the days not rolled up yet (the page's keeps them a short while); ``views``
    (the page's) keeps whole results built on what the reader kept, until any input changes."""
    if since is None:
        if days not in PERIODS:
            raise ValueError(f"days must be one of {', '.join(map(str, PERIODS))}")
        since, until = today - timedelta(days=days - 1), today
    until = until or today
    if not since <= until <= today:
        raise ValueError("the period must end today at the latest and not before it starts")
    days = (until - since).days + 1
    scope = await resolve(db, grant, dept=dept, manager=manager)
    prev_since = since - timedelta(days=days)
    first = min(prev_since, since - timedelta(days=since.weekday()))
    # A past period reads nothing after its end: its figures are those its last day could know.
    # The whole bank's: narrowed to the scope only when the result is computed, not on a kept view.
    # Which days are stored and when they were rolled up, read once: the live days, the kept
    # view's and the kept lookup's fingerprints all come from it (read before any figure).
    # (Read from the start of the widest page period, for the shared lookup of seen customers.)
    span_first = today - timedelta(days=SEEN_SPAN_DAYS)
    rolled = await periodcache.rolled_up(db, min(first, span_first), until)
    live = await bank_live_days(db, first, until, today=today, now=now, zone=zone, reader=reader, rolled=rolled)

    if views is None or reader is None or reader.serials is None:
        return await _result(db, scope, since, until, within(scope, live))
    serials = reader.serials

    async def bank_seen(days: list[date]) -> list[tuple[str, str, str]]:
        # Kept as a view is: under the live days' computations and the stored days' roll-ups of
        # the widest page period. One lookup (of every day: the SQL cannot narrow by day, see
        # load_period) per live window serves every period's and every scope's first view.
        if days and min(days) < span_first:  # not a page's period: looked up for these days alone
            return await bank_seen_rows(db, live, days)
        span = sorted(d for d in rolled if d >= span_first)

        async def lookup() -> dict[str, Any]:
            return {"rows": await bank_seen_all(db, live)}
        seen_key = periodcache.digest(["seen-all", periodcache.VERSION, zone, reader.playbook, sorted(live)])
        rows = (await views.view(db, seen_key, span, serials, lookup,
                                 fingerprint=periodcache.fingerprint_of(rolled, span)))["rows"]
        wanted = set(days)
        return [(userid, metric, key) for userid, metric, key, day in rows if day in wanted]

    async def compute() -> dict[str, Any]:
        return await _result(db, scope, since, until, within(scope, live), bank_seen)

    key = view_key(since=since, until=until, today=today, playbook=reader.playbook, zone=zone, dept=scope.dept,
                   manager=scope.manager, members=scope.members)
    stored_days = [d for d in _days(first, until) if d not in live]
    return await views.view(db, key, stored_days, reader.serials, compute,
                            fingerprint=periodcache.fingerprint_of(rolled, stored_days))


async def _result(db: AsyncSession, scope: Scope, since: date, until: date, live: Daily,
                  bank_seen: SeenRows | None = None) -> dict[str, Any]:
    """The cockpit's figures of ``since``–``until`` in ``scope``, with ``live`` the days not rolled up."""
    days = (until - since).days + 1
    prev_since, prev_until = since - timedelta(days=days), since - timedelta(days=1)
    cur, prev, daily = await _load(db, scope, since, until, live, bank_seen)
    added_c, added_p, lost_c, lost_p = cur.keyed[r.ADDED], prev.keyed[r.ADDED], cur.keyed[r.LOST], prev.keyed[r.LOST]
    channels = sorted(set(added_c) | set(added_p) | set(lost_c) | set(lost_p))
    skips_c, skips_p = cur.keyed[r.SKIP], prev.keyed[r.SKIP]
    teams, managers = rankings(cur, scope)
    return {
        "period": {"days": days, "since": since.isoformat(), "until": until.isoformat(),
                   "previous_since": prev_since.isoformat(), "previous_until": prev_until.isoformat()},
        "scope": {"dept": scope.dept, "manager": scope.manager, "label": scope.label},
        "figures": _trend(cur.scalars(SCOPE), prev.scalars(SCOPE)),
        "channels": [{"channel": c, "added": {"current": added_c.get(c, 0), "previous": added_p.get(c, 0)},
                      "lost": {"current": lost_c.get(c, 0), "previous": lost_p.get(c, 0)}} for c in channels],
        "skips": [{"reason": k, "label": label, "current": skips_c.get(k, 0), "previous": skips_p.get(k, 0)}
                  for k, label in LABELS.items()],
        "daily": [{"day": d.isoformat(), **{k: v for k, v in figures(daily.get(d, {})).items()
                                            if k in ("added", "lost", "removed", "net")}} for d in _days(since, until)],
        "retention": retention(daily, since, until),
        "teams": teams,
        "managers": managers,
    }
