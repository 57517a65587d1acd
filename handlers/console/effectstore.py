"""The SOP effect page's stored rows: what each target of each step on each planned day came to,
so a view counts stored rows in the database instead of reading the period's raw rows again.

On 1,000,000 customers a 30-day view read ~143,000 ``occurrence`` rows and made ~1,400 ``IN (500
keys)`` statements (``bench/README.md``); effect figures settle days or weeks after the send
(:mod:`handlers.console.effect`), so a once-final daily roll-up cannot hold them. Instead:

* **Stored rows.** ``console_effect_row`` holds one row per (planned day, SOP, step, target)
  with its manager and how far it got (sent, skip kind, delivered, opened, converted), computed
  by :func:`handlers.console.effect.collect` — the live page's own code — for one day at a time
  (:func:`build_day`). ``console_effect_day`` says which days are stored, for which goals, and
  the last ``occurrence`` / ``radar_click`` / ``crm_event`` ids read *before* the build.
* **What came later is read live** (:func:`_changes`, at every view): occurrences recorded after
  a day's build (a late slot, a carried-over card) make that day live again; opens, mass-send
  confirmations, script taps, CRM events and bindings recorded since the build only ever *add*
  a stage to stored rows (each is monotonic), so they are applied to the rows of the targets
  they name. A day with no stored row, or stored for other goals, and today are computed live
  from the raw rows (:func:`~handlers.console.effect.collect`).
* **Counting.** The database counts distinct targets per step and per SOP over the stored days
  (one grouped statement each, in the viewer's scope); the few targets that changed since (today's
  occurrences, the late facts above) are then counted again in Python from their stored rows and
  their live state, and the difference is added. So every figure equals the raw-row computation
  (``tests/handlers/console/test_effectstore.py`` rebuilds and compares).
* **The page's live part** (:class:`LiveParts`): the stored days used, the live days'
  occurrences and what came since are the whole bank's and the same for every viewer, so the
  page keeps them ``[console] live_cache_s`` seconds, as the cockpit keeps its today, and says
  when they were computed ("今日数据截至 HH:MM"); reports and tests read them at once.
  The stored days' counts are kept in the console's period cache under the days' build times
  and warmed nightly for every access-file scope (:func:`warm`).
* **Nightly** (:func:`build_due`, after the cockpit's roll-up): every day of the last
  :data:`KEEP_DAYS` not stored (or stored for other goals) is built; a stored day the late facts
  touched is built again, and the others move their ids on, so a view's live part stays one
  day of facts.

Known difference, left as the live page has it: a skip in a group chat belongs to the group's
*current* owner in the live computation, to its owner when the day was built here.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, delete, func, insert, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.console import periodcache
from handlers.console.effect import (
    SopFigures,
    StepFigures,
    _chunks,
    _in_scope,
    _Occ,
    _parse,
    among,
    collect,
    figures_of,
)
from handlers.console.models import ConsoleEffectDay, ConsoleEffectRow
from handlers.console.reasons import LABELS
from handlers.console.scope import Scope
from handlers.console.shortlived import ShortLived
from handlers.crm.api import Binding, CrmEvent
from handlers.radar.api import RadarClick
from handlers.sop.api import SCRIPT_SENT_AT, SopMassSend, SopTask
from scrm.adapters.db.engine import dialect_of, table_of, upsert
from scrm.kernel.models import Occurrence, OutboxAction
from scrm.playbook import Goal

#: The days the nightly job keeps stored: the console's longest period (90 days) and a margin.
KEEP_DAYS = 100
#: Confirmations and bindings are found by their time, not an id: read this much before a build
#: too (applying a fact twice changes nothing), for a commit that lands just after a build read.
TIME_MARGIN = timedelta(hours=1)

Goals = dict[tuple[str, str], Goal]
_ROW = table_of(ConsoleEffectRow)
_DAY = table_of(ConsoleEffectDay)
_WHOLE_BANK = Scope("", "", {})


def goals_key(goals: Goals) -> str:
    """The SHA-256 of the goals a day's conversions were counted for."""
    plain = sorted([src, step, g.event, g.within_days] for (src, step), g in goals.items())
    return hashlib.sha256(json.dumps(plain).encode()).hexdigest()


@dataclass(frozen=True)
class _Marks:
    occurrence_id: int
    click_id: int
    crm_event_id: int


async def _marks(db: AsyncSession) -> _Marks:
    """The last ids of the tables whose new rows change effect figures, read before a build."""
    occ = await db.scalar(select(func.max(Occurrence.id)))
    click = await db.scalar(select(func.max(RadarClick.id)))
    crm = await db.scalar(select(func.max(CrmEvent.id)))
    return _Marks(int(occ or 0), int(click or 0), int(crm or 0))


def _row_of(o: _Occ) -> dict[str, Any]:
    return {"day": o.day, "source": o.source, "step": o.step, "target": o.target, "manager": o.manager, "at": o.at,
            "sent": o.sent, "skip": o.skip, "delivered": o.delivered, "opened": o.opened, "converted": o.converted}


def _occ_of(row: Any) -> _Occ:
    return _Occ(row.source, row.step, row.target, row.day, row.at, bool(row.sent), row.skip, row.manager,
                bool(row.delivered), bool(row.opened), bool(row.converted))


async def build_day(db: AsyncSession, day: date, zone: str, goals: Goals, now: datetime) -> int:
    """Store ``day``'s rows again from the raw rows (replacing what was there); how many."""
    marks = await _marks(db)
    occs = await collect(db, day, day, zone, goals)
    await periodcache.invalidate(db, day)
    await db.execute(delete(ConsoleEffectRow).where(ConsoleEffectRow.day == day))
    for chunk in _chunks([_row_of(o) for o in occs]):
        await db.execute(insert(_ROW), list(chunk))
    await db.execute(upsert(dialect_of(db), _DAY, ["day"], ["built_at", "goals", "occurrence_id", "click_id",
                                                            "crm_event_id"]),
                     {"day": day, "built_at": now, "goals": goals_key(goals), "occurrence_id": marks.occurrence_id,
                      "click_id": marks.click_id, "crm_event_id": marks.crm_event_id})
    return len(occs)


async def _stored_days(db: AsyncSession, since: date, until: date, goals: Goals) -> dict[date, Any]:
    """The days of ``since``..``until`` stored for these goals → their ``console_effect_day`` row."""
    key = goals_key(goals)
    rows = (await db.execute(select(_DAY).where(_DAY.c.day >= since, _DAY.c.day <= until))).all()
    return {r.day: r for r in rows if r.goals == key}


@dataclass
class _Changes:
    """What the raw rows say happened since the stored days were built."""

    late_days: set[date] = field(default_factory=set)  # occurrences recorded after their day's build
    opened: set[str] = field(default_factory=set)  # radar occurrences opened
    delivered: set[str] = field(default_factory=set)  # send keys confirmed or whose script was sent
    events: dict[str, list[tuple[str, datetime]]] = field(default_factory=dict)  # target → (kind, at)

    def targets(self) -> set[str]:
        out = set(self.events)
        out.update(k.rsplit("@", 1)[1].rsplit(":", 1)[0] for k in self.opened if "@" in k)
        out.update(_send_key_target(k) for k in self.delivered)
        return out


def _send_key_target(key: str) -> str:
    """``sop:KIND:NAME:STEP:TARGET:DAY`` → TARGET."""
    return key.rsplit(":", 2)[1] if key.count(":") >= 5 else ""


async def _changes(db: AsyncSession, stored: dict[date, Any], since: date, goals: Goals) -> _Changes:
    out = _Changes()
    if not stored:
        return out
    occ_mark = min(r.occurrence_id for r in stored.values())
    click_mark = min(r.click_id for r in stored.values())
    crm_mark = min(r.crm_event_id for r in stored.values())
    built = min(r.built_at for r in stored.values()) - TIME_MARGIN
    occ = table_of(Occurrence)
    for job_key, occurrence_key in (await db.execute(select(occ.c.job_key, occ.c.occurrence_key).where(
            occ.c.id > occ_mark, occ.c.job_key.like("sop:%:%:%")))).all():
        parsed = _parse(job_key, occurrence_key)
        if parsed is not None and parsed[3] in stored:
            out.late_days.add(parsed[3])
    out.opened.update(x for x in (await db.scalars(select(RadarClick.occurrence).where(
        RadarClick.id > click_mark, RadarClick.occurrence.like("sop:%")))).all() if x)
    out.delivered.update((await db.scalars(
        select(OutboxAction.idempotency_key).join(SopMassSend, SopMassSend.msgid == OutboxAction.wecom_msgid)
        .where(SopMassSend.confirmed.is_(True), SopMassSend.checked_at >= built))).all())
    out.delivered.update(key for key, detail in (await db.execute(
        # key >= "sop:" and < "sop;" (the next character): SOP cards only, through the unique index on key
        select(SopTask.key, SopTask.detail).where(SopTask.key >= "sop:", SopTask.key < "sop;",
                                                  SopTask.day >= since))).all()
                         if (detail or {}).get(SCRIPT_SENT_AT))
    kinds = sorted({g.event for g in goals.values()})
    if kinds:
        await _new_events(db, out, kinds, crm_mark, built, since)
    return out


async def _new_events(db: AsyncSession, out: _Changes, kinds: Sequence[str], crm_mark: int, built: datetime,
                      since: date) -> None:
    """Goal events recorded since the build, and every goal event of customers bound since."""
    new: list[tuple[str, str, datetime]] = [(r[0], r[1], r[2]) for r in (await db.execute(
        select(CrmEvent.crm_id, CrmEvent.kind, CrmEvent.at).where(CrmEvent.id > crm_mark, CrmEvent.kind.in_(kinds))))]
    bound = (await db.execute(select(Binding.crm_id).where(Binding.bound_at >= built))).scalars().all()
    first = datetime.combine(since - timedelta(days=1), datetime.min.time(), tzinfo=built.tzinfo)
    for chunk in _chunks(sorted(set(bound))):
        new += [(r[0], r[1], r[2]) for r in (await db.execute(select(CrmEvent.crm_id, CrmEvent.kind, CrmEvent.at).where(
            among(db, CrmEvent.crm_id, chunk), CrmEvent.kind.in_(kinds), CrmEvent.at > first)))]
    by_crm: dict[str, list[tuple[str, datetime]]] = {}
    for crm_id, kind, at in new:
        by_crm.setdefault(crm_id, []).append((kind, at))
    for chunk in _chunks(sorted(by_crm)):
        for crm_id, ext in (await db.execute(select(Binding.crm_id, Binding.external_userid)
                                             .where(among(db, Binding.crm_id, chunk)))).all():
            out.events.setdefault(ext, []).extend(by_crm[crm_id])


def _apply(o: _Occ, changes: _Changes, goals: Goals) -> _Occ:
    """A stored row with what happened since its build."""
    if not o.sent:
        return o
    goal = goals.get((o.source, o.step))
    converted = o.converted or (goal is not None and o.at is not None and any(
        kind == goal.event and o.at < at <= o.at + timedelta(days=goal.within_days)
        for kind, at in changes.events.get(o.target, ())))
    return replace(o, delivered=o.delivered or o.send_key in changes.delivered,
                   opened=o.opened or o.radar_occurrence in changes.opened, converted=converted)


def _one(cond: Any) -> Any:
    return func.max(case((cond, 1), else_=0))


async def _count_stored(db: AsyncSession, scope: Scope, days: Sequence[date], by_step: bool) -> dict[Any, Any]:
    """Distinct targets per stage over the stored rows of ``days`` (contiguous runs), per step
    (``by_step``) or per SOP: a row per target first, then the sum of its stages."""
    if not days:
        return {}
    r = _ROW.c
    keys = [r.source, r.step] if by_step else [r.source]
    skip_cols = [_one(r.skip == kind).label(f"skip_{i}") for i, kind in enumerate(LABELS)]
    inner = (select(*keys, _one(r.sent).label("sent"), _one(r.skip.is_not(None)).label("skipped_total"),
                    _one(r.delivered).label("delivered"), _one(r.opened).label("opened"),
                    _one(r.converted).label("converted"), *skip_cols)
             .where(_days_clause(days)).group_by(*keys, r.target))
    if not scope.whole_bank:
        inner = inner.where(r.manager.in_(sorted(scope.members)))
    sub = inner.subquery()
    group = [sub.c.source, sub.c.step] if by_step else [sub.c.source]
    stages = ("sent", "skipped_total", "delivered", "opened", "converted")
    stmt = select(*group, func.count(), *[func.sum(sub.c[s]) for s in stages],
                  *[func.sum(sub.c[f"skip_{i}"]) for i in range(len(LABELS))]).group_by(*group)
    out: dict[Any, Any] = {}
    for row in (await db.execute(stmt)).all():
        n = len(group)
        key = tuple(row[:n]) if by_step else row[0]
        values = [int(v or 0) for v in row[n:]]
        figures: dict[str, Any] = {"targeted": values[0], **dict(zip(stages, values[1:6], strict=True))}
        figures["skipped"] = {kind: values[6 + i] for i, kind in enumerate(LABELS)}
        out[key] = figures
    return out


def _days_clause(days: Sequence[date]) -> Any:
    """SQL: ``day`` in ``days``, as ranges of consecutive days (a period with today or a late day
    left out is one or two ranges, not a list of 90 dates)."""
    ranges: list[tuple[date, date]] = []
    for d in sorted(days):
        if ranges and ranges[-1][1] + timedelta(days=1) == d:
            ranges[-1] = (ranges[-1][0], d)
        else:
            ranges.append((d, d))
    return or_(*[and_(_ROW.c.day >= a, _ROW.c.day <= b) for a, b in ranges])


async def _stored_rows(db: AsyncSession, scope: Scope, days: Sequence[date], targets: Iterable[str]) -> list[_Occ]:
    out: list[_Occ] = []
    if not days:
        return out
    visible, wanted = _in_scope(scope), set(days)
    for chunk in _chunks(sorted(set(targets))):
        # By target alone (ix_console_effect_row_target): with the days in the statement too the
        # planner may scan the period's rows by the primary key instead of probing 500 targets.
        rows = (await db.execute(select(_ROW).where(among(db, _ROW.c.target, chunk)))).all()
        out += [o for o in map(_occ_of, rows) if o.day in wanted and visible(o.manager)]
    return out


def _add(base: dict[Any, Any], new: dict[Any, Any], old: dict[Any, Any]) -> None:
    """``base`` += ``new`` − ``old``, figure by figure (the changed targets counted again)."""
    for key in set(new) | set(old):
        b = base.setdefault(key, _zero())
        n, o = new.get(key, _zero()), old.get(key, _zero())
        for stage in ("targeted", "sent", "skipped_total", "delivered", "opened", "converted"):
            b[stage] += n[stage] - o[stage]
        b["skipped"] = {kind: b["skipped"][kind] + n["skipped"][kind] - o["skipped"][kind] for kind in LABELS}


def _zero() -> dict[str, Any]:
    return {"targeted": 0, "sent": 0, "skipped": dict.fromkeys(LABELS, 0), "skipped_total": 0, "delivered": 0,
            "opened": 0, "converted": 0}


@dataclass(frozen=True)
class LivePart:
    """What a view does not read from the stored rows, the whole bank's: the stored days used,
    the live days' occurrences (with how far they got), what came since the build, and the
    stored rows of every target those two name — what each scope corrects its stored counts
    with, narrowed to its managers (one read per live window instead of one per view)."""

    used: list[date]
    live: list[_Occ]
    changes: _Changes
    at: datetime  # computed as of this moment
    before: list[_Occ] = field(default_factory=list)  # the stored rows (of ``used``) of the touched targets
    built: str = ""  # the ``used`` days' builds when ``before`` was read (:func:`_fingerprint`)
    serial: int = 0  # which computation of its :class:`LiveParts` (a kept view names it)
    nonce: str = ""  # also in its marker row (:func:`live_part`): gone once a used day is built again


class LiveParts(ShortLived[LivePart]):
    """The effect page's live parts computed in the last ``ttl_s`` seconds, per period, in the
    service (``[console] live_cache_s``, as the cockpit keeps its today:
    :mod:`handlers.console.livecache`): every scope filters the same whole-bank part, and the
    page says "截至 HH:MM". Concurrent views of a period not kept wait for one computation."""


async def _live_part(db: AsyncSession, since: date, until: date, zone: str, goals: Goals,
                     now: datetime) -> LivePart:
    stored = await _stored_days(db, since, until, goals)
    changes = await _changes(db, stored, since, goals)
    used = sorted(d for d in stored if d not in changes.late_days)
    live_days = sorted({since + timedelta(days=i) for i in range((until - since).days + 1)} - set(used))
    live: list[_Occ] = []
    for first, last in _runs(live_days):
        live += await collect(db, first, last, zone, goals)
    before = await _stored_rows(db, _WHOLE_BANK, used, {o.target for o in live} | changes.targets())
    return LivePart(used, live, changes, now, before, _fingerprint({d: stored[d] for d in used}))


async def live_part(db: AsyncSession, *, since: date, until: date, zone: str, goals: Goals,
                    now: datetime | None = None, kept: LiveParts | None = None, version: str = "") -> LivePart:
    """The live part of ``since``..``until``: through ``kept`` (the page's, with ``now`` and the
    playbook's ``version``) when given, else computed now.

    A kept part holds stored rows, so it is used only while the stored days it used are as they
    were: their build times are unchanged and its marker row in the period cache is still there
    (:func:`build_day` deletes every row covering the day it builds, in its transaction — so a
    day built again at the same instant, by any process, is seen). Otherwise it is computed
    again. A part computed while this view waited for it is taken as it is: its marker is in the
    computing view's transaction, not committed yet, and it read the same rows this view would."""
    if kept is None or now is None or not kept.ttl:
        return await _live_part(db, since, until, zone, goals, now or datetime.min)
    key = (version, zone, since, until, goals_key(goals))
    marker = periodcache.digest(["effect-live", periodcache.VERSION, version, zone, since, until, goals_key(goals)])
    began = kept.serial

    async def compute() -> LivePart:
        part = await _live_part(db, since, until, zone, goals, now)
        nonce = secrets.token_hex(16)
        await periodcache.put(db, marker, part.used, part.built, nonce)
        return replace(part, nonce=nonce)

    entry = await kept.get(key, now, compute)
    part = entry.value
    if part.used and entry.serial <= began and not (
            _fingerprint(await _stored_days_of(db, part.used)) == part.built
            and await periodcache.get(db, marker, part.built) == part.nonce):
        entry = await kept.get(key, now, compute, renew=True)
    return replace(entry.value, serial=entry.serial)


async def figures_in(db: AsyncSession, scope: Scope, part: LivePart, goals: Goals) -> tuple[StepFigures, SopFigures]:
    """The figures in ``scope`` of a period whose live part is ``part``: the stored days counted
    in the database (kept in the period cache), the targets that changed since counted again."""
    visible = _in_scope(scope)
    live = [o for o in part.live if visible(o.manager)]
    steps, totals = await _stored_counts(db, scope, part.used, goals, built=part.built)
    before = [o for o in part.before if visible(o.manager)]
    after = [_apply(o, part.changes, goals) for o in before] + live
    old_steps, old_totals = figures_of(before)
    new_steps, new_totals = figures_of(after)
    _add(steps, new_steps, old_steps)
    _add(totals, new_totals, old_totals)
    return steps, totals


async def _stored_counts(db: AsyncSession, scope: Scope, used: Sequence[date], goals: Goals, *,
                         built: str | None = None) -> tuple[StepFigures, SopFigures]:
    """The counts of the stored rows of ``used`` days in ``scope``, kept in the console's period
    cache (:mod:`handlers.console.periodcache`) under the days' build times (``built`` when the
    caller has just read them): they change only when a day is built again (:func:`build_day`
    also drops the kept counts covering it)."""
    days = sorted(used)
    print_ = built if built is not None else _fingerprint(await _stored_days_of(db, days))
    key = periodcache.cache_key(f"effect:{goals_key(goals)}", dept=scope.dept, manager=scope.manager,
                                userids=sorted(scope.members), days=days)
    kept = await periodcache.get(db, key, print_)
    if kept is not None:
        return ({(src, step): f for src, step, f in kept["steps"]}, dict(kept["totals"]))
    steps = await _count_stored(db, scope, days, by_step=True)
    totals = await _count_stored(db, scope, days, by_step=False)
    await periodcache.put(db, key, days, print_, {"steps": [[src, step, f] for (src, step), f in sorted(steps.items())],
                                                  "totals": sorted(totals.items())})
    return steps, totals


async def warm(db: AsyncSession, scope: Scope, *, today: date, days: int, goals: Goals) -> None:
    """Keep the stored days' counts of the ``days`` ending ``today`` in ``scope`` (the nightly
    job, after :func:`build_due`, for the day's first views): what :func:`figures_in` reads
    when nothing came late."""
    since = today - timedelta(days=days - 1)
    await _stored_counts(db, scope, sorted(await _stored_days(db, since, today, goals)), goals)


async def _stored_days_of(db: AsyncSession, days: Sequence[date]) -> dict[date, Any]:
    """The ``console_effect_day`` rows of ``days`` as they are now (a kept live part may be older)."""
    if not days:
        return {}
    wanted = set(days)
    rows = (await db.execute(select(_DAY).where(_DAY.c.day >= min(days), _DAY.c.day <= max(days)))).all()
    return {r.day: r for r in rows if r.day in wanted}


def _fingerprint(used: dict[date, Any]) -> str:
    plain = sorted((d.isoformat(), r.built_at.isoformat(), r.goals) for d, r in used.items())
    return hashlib.sha256(json.dumps(plain).encode()).hexdigest()


def _runs(days: Sequence[date]) -> list[tuple[date, date]]:
    out: list[tuple[date, date]] = []
    for d in days:
        if out and out[-1][1] + timedelta(days=1) == d:
            out[-1] = (out[-1][0], d)
        else:
            out.append((d, d))
    return out


async def build_due(db: AsyncSession, today: date, zone: str, goals: Goals, now: datetime) -> list[date]:
    """The nightly build: every day of the last :data:`KEEP_DAYS` before ``today`` that is not
    stored for these goals, or that facts since its build touched; the other stored days move
    their ids on (nothing since their build concerns them). The days built, in order."""
    first, yesterday = today - timedelta(days=KEEP_DAYS), today - timedelta(days=1)
    await db.execute(delete(ConsoleEffectRow).where(ConsoleEffectRow.day < first))
    await db.execute(delete(ConsoleEffectDay).where(ConsoleEffectDay.day < first))
    marks = await _marks(db)
    stored = await _stored_days(db, first, yesterday, goals)
    changes = await _changes(db, stored, first, goals)
    touched = set(changes.late_days)
    touched.update(o.day for o in await _stored_rows(db, _WHOLE_BANK, sorted(stored), changes.targets())
                   if _apply(o, changes, goals) != o)
    due = [first + timedelta(days=i) for i in range(KEEP_DAYS) if first + timedelta(days=i) not in stored
           or first + timedelta(days=i) in touched]
    for day in due:
        await build_day(db, day, zone, goals, now)
    for day in stored:
        if day not in touched:
            await db.execute(_DAY.update().where(_DAY.c.day == day).values(
                built_at=now, occurrence_id=marks.occurrence_id, click_id=marks.click_id,
                crm_event_id=marks.crm_event_id))
    return due

