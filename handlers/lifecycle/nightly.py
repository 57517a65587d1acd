"""One chunk of the nightly run: read what the service knows of a few thousand customers, score
them (:mod:`.score`), store the result, mirror it onto the CRM record and report stage changes.

Why onto the CRM record: the CRM tag sync is the one writer of CRM-owned tags in WeCom, and the
SOP engine reads CRM attributes for its filters, anchors and templates. Writing ``seg_tier``,
``seg_segments``, ``seg_grade``, ``seg_rfm``, ``stage`` and ``stage_entered`` there and queueing
a sync for the records that changed makes them tags (tags.yaml maps them like any attribute) and
SOP fields with no second tag writer. The CRM's own imports merge attributes key by key, so they
leave these keys alone.

Customers are read in ``external_userid`` order (keyset), ``limit`` at a time, so memory stays flat;
each table is read once a chunk, over the chunk's id range.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import Table, and_, bindparam, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.contacts.api import Customer, Follow
from handlers.crm.api import Binding, CrmCustomer, CrmEvent, queue_sync
from handlers.radar.api import RadarClick
from scrm.adapters.db.engine import dialect_of, table_of
from scrm.kernel.inbox import Inbox

from .criteria import amount
from .events import StageEntered
from .models import CustomerSegment
from .rules import Lifecycle, Segmentation
from .score import Scorer

DEFAULT_CHUNK = 2000
#: The CRM attributes this feature writes (and no one else should).
MIRRORED = ("seg_tier", "seg_segments", "seg_grade", "seg_rfm", "stage", "stage_entered")


@dataclass
class Seen:
    """What the service knows of one customer, gathered for scoring."""

    external_userid: str
    added_at: datetime | None = None
    last_contact_at: datetime | None = None
    crm_id: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    radar_opens: int = 0
    crm_events: int = 0


@dataclass
class Chunk:
    """What one chunk did: the next cursor (None at the end), and counts for the log and CLI."""

    cursor: str | None
    scanned: int = 0
    mirrored: int = 0
    entered: list[StageEntered] = field(default_factory=list)


async def customers(session: AsyncSession, after: str, limit: int) -> list[Seen]:
    """The next ``limit`` customers with an active relation, in id order, each with when the
    first of those relations was added and the last contact on any of them."""
    rows = await session.execute(select(Follow.external_userid, func.min(Follow.created_at),
                                        func.max(Follow.last_contact_at))
                                 .where(Follow.status == "active", Follow.external_userid > after)
                                 .group_by(Follow.external_userid).order_by(Follow.external_userid).limit(limit))
    return [Seen(ext, added_at=added, last_contact_at=contact) for ext, added, contact in rows.all()]


async def gather(session: AsyncSession, customers: Sequence[Seen], after: str, since: datetime) -> None:
    """Fill in the CRM record, radar opens and CRM events (since ``since``) of ``customers``
    (the ones after ``after`` in id order, up to the last of them).

    Each table is read once for the chunk, by the id range (a keyset, not an IN list of a few
    thousand ids); rows of customers the range holds but the chunk does not are skipped."""
    seen = {s.external_userid: s for s in customers}
    last = customers[-1].external_userid

    def in_range(column: Any) -> Any:
        return and_(column > after, column <= last)

    # The customer's own CRM record first, else a binding's (as the SOP engine reads them).
    records: dict[str, dict[str, Any]] = {}
    for ext, crm_id, attrs in (await session.execute(
            select(Customer.external_userid, CrmCustomer.crm_id, CrmCustomer.attributes)
            .join(CrmCustomer, CrmCustomer.crm_id == Customer.crm_id)
            .where(in_range(Customer.external_userid), Customer.crm_id != ""))).all():
        s = seen.get(ext)
        if s is not None:
            s.crm_id, s.attributes = crm_id, dict(attrs or {})
            records[crm_id] = s.attributes
    bound: dict[str, str] = {}
    for ext, crm_id in (await session.execute(select(Binding.external_userid, Binding.crm_id)
                                              .where(in_range(Binding.external_userid)))).all():
        if ext in seen:
            bound[ext] = crm_id
    unbound = {ext: crm_id for ext, crm_id in bound.items() if seen[ext].crm_id is None}
    wanted = sorted(set(unbound.values()) - set(records))
    if wanted:
        for crm_id, attrs in (await session.execute(select(CrmCustomer.crm_id, CrmCustomer.attributes)
                                                    .where(CrmCustomer.crm_id.in_(wanted)))).all():
            records[crm_id] = dict(attrs or {})
    for ext, crm_id in unbound.items():
        if crm_id in records:
            seen[ext].crm_id, seen[ext].attributes = crm_id, records[crm_id]
    by_crm = {s.crm_id: s for s in customers if s.crm_id is not None}
    if by_crm:
        for crm_id, n in (await session.execute(select(CrmEvent.crm_id, func.count())
                                                .where(CrmEvent.crm_id.in_(list(by_crm)), CrmEvent.at >= since)
                                                .group_by(CrmEvent.crm_id))).all():
            by_crm[crm_id].crm_events = int(n)
    for opener, n in (await session.execute(select(RadarClick.external_userid, func.count())
                                            .where(in_range(RadarClick.external_userid), RadarClick.at >= since)
                                            .group_by(RadarClick.external_userid))).all():
        if opener in seen:
            seen[opener].radar_opens = int(n)


def signals(s: Seen, trend: float, today: date, tz: Any, crm_fields: Sequence[str]) -> dict[str, Any]:
    """What a stage rule may test: the signals, and the CRM attributes the rules name
    (``crm_fields``, without the ``crm.``) as ``crm.<name>``."""
    def days_since(at: datetime | None) -> int | None:
        return (today - at.astimezone(tz).date()).days if at is not None else None

    values: dict[str, Any] = {f"crm.{k}": s.attributes.get(k) for k in crm_fields}
    values.update({"days_since_added": days_since(s.added_at),
                   # Never contacted counts from the day the customer was added.
                   "days_since_contact": days_since(s.last_contact_at or s.added_at),
                   "radar_opens": s.radar_opens, "crm_events": s.crm_events, "aum_trend": trend})
    return values


def _trend(prev: Previous | None, aum: float | None, today: date, days: int
           ) -> tuple[float, dict[str, Any]]:
    """The AUM change as a fraction of a reading ``days``..2×``days`` old, and the new readings."""
    base = prev.aum_base if prev else None
    mid, mid_at = (prev.aum_mid, prev.aum_mid_at) if prev else (None, None)
    if aum is not None and (mid_at is None or (today - mid_at).days >= days):
        if mid_at is not None:
            base = mid
        mid, mid_at = aum, today
    trend = (aum - base) / base if aum is not None and base else 0.0
    return round(trend, 4), {"aum": aum, "aum_base": base, "aum_mid": mid, "aum_mid_at": mid_at}


class Previous(NamedTuple):
    """What the last run left of one customer, as stored (``computed_at`` aside): what this run
    needs (hysteresis, stay, trend), and the whole result, to leave a row alone when this run
    finds the same."""

    crm_id: str | None
    tier: str | None
    segments: list[str]
    grade: str | None
    score: float
    rfm: str | None
    stage: str | None
    stage_since: date | None
    aum: float | None
    aum_base: float | None
    aum_mid: float | None
    aum_mid_at: date | None


#: The stored result a run compares with what it finds.
RESULT = Previous._fields


async def previous(session: AsyncSession, after: str, last: str) -> dict[str, Previous]:
    """The stored results of the customers after ``after`` up to ``last``, by id (plain rows: no
    ORM objects for a few thousand customers a chunk)."""
    t = table_of(CustomerSegment).c
    rows = await session.execute(select(t.external_userid, *(t[c] for c in RESULT))
                                 .where(t.external_userid > after, t.external_userid <= last))
    return {ext: Previous(*rest) for ext, *rest in rows.all()}


def _upsert(dialect: str, table: Table, columns: Sequence[str]) -> Any:
    stmt = postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)
    return stmt.on_conflict_do_update(index_elements=["external_userid"],
                                      set_={c: stmt.excluded[c] for c in columns if c != "external_userid"})


async def run_chunk(session: AsyncSession, inbox: Inbox | None, seg: Segmentation, lc: Lifecycle, *,
                    today: date, now: datetime, tz: Any, cursor: str = "", limit: int = DEFAULT_CHUNK) -> Chunk:
    """Score the ``limit`` customers after ``cursor`` in the caller's transaction.

    ``inbox`` receives a :class:`StageEntered` per change of stage and a CRM sync for the
    records whose mirrored attributes changed (None: neither, as ``scrm segments run --dry-run``)."""
    batch = await customers(session, cursor, limit)
    if not batch:
        return Chunk(cursor=None)
    await gather(session, batch, cursor, now - timedelta(days=lc.window_days))
    prev = await previous(session, cursor, batch[-1].external_userid)
    crm_fields = sorted({f[4:] for st in lc.stages for f in st.rule.fields if f.startswith("crm.")})
    scorer = Scorer(seg, lc)
    rows: list[dict[str, Any]] = []
    mirrors: dict[str, dict[str, Any]] = {}
    chunk = Chunk(cursor=batch[-1].external_userid if len(batch) == limit else None, scanned=len(batch))
    for s in batch:
        ext = s.external_userid
        p = prev.get(ext)
        attrs = s.attributes
        aum_raw = attrs.get(seg.tier_attribute)
        aum = amount(aum_raw)
        trend, readings = _trend(p, aum, today, lc.trend_days)
        score = scorer.score(attrs)
        stage = scorer.stage(signals(s, trend, today, tz, crm_fields), p.stage if p else None,
                             p.stage_since if p else None, today)
        changed = p is not None and p.stage is not None and stage != p.stage
        since = today if (p is None or p.stage != stage) else p.stage_since
        row = {"external_userid": ext, "crm_id": s.crm_id, "tier": scorer.tier(aum, p.tier if p else None),
               "segments": list(scorer.segments(attrs)), "grade": scorer.grade(score), "score": score,
               "rfm": scorer.rfm(attrs, today), "stage": stage, "stage_since": since, "computed_at": now,
               **readings}
        # Most customers come out as they were: their row is left alone (``computed_at`` is when
        # a run last changed it), which spares the night most of its writes.
        if p != tuple(row[c] for c in RESULT):
            rows.append(row)
        if changed and stage is not None:
            st = lc.stage(stage)
            chunk.entered.append(StageEntered(at=now, external_userid=ext, stage=stage,
                                              previous=(p.stage if p else None) or "",
                                              day=today.isoformat(), churn_risk=bool(st and st.churn_risk)))
        if s.crm_id:
            want: dict[str, Any] = {"seg_tier": row["tier"], "seg_segments": row["segments"],
                                    "seg_grade": row["grade"], "seg_rfm": row["rfm"], "stage": stage}
            if changed:
                want["stage_entered"] = today.isoformat()
            if any(attrs.get(k) != v for k, v in want.items()):
                mirrors[s.crm_id] = {**attrs, **want}
    if rows:
        dialect = dialect_of(session)
        table = table_of(CustomerSegment)
        await session.execute(_upsert(dialect, table, list(rows[0])), rows)
    if mirrors:
        await _mirror(session, mirrors)
        chunk.mirrored = len(mirrors)
    if inbox is not None:
        for e in chunk.entered:
            await inbox.add_internal(session, e, f"stage:{e.external_userid}:{e.stage}:{e.day}")
        if mirrors:
            await queue_sync(session, inbox, sorted(mirrors), now, f"lifecycle:{today.isoformat()}:{cursor}")
    return chunk


async def _mirror(session: AsyncSession, mirrors: Mapping[str, dict[str, Any]]) -> None:
    table = table_of(CrmCustomer)
    stmt = update(table).where(table.c.crm_id == bindparam("k")).values(attributes=bindparam("a"))
    await session.execute(stmt, [{"k": k, "a": a} for k, a in mirrors.items()])
