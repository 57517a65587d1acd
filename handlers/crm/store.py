"""Store CRM records (from any adapter) and turn them into dispatcher events.

Shared by the HTTP API, the file importer and the watched folder: one code path, so a pushed
change and an imported one behave the same. Each call works inside the caller's transaction;
the internal events it adds commit (or vanish) with the rows that caused them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.crm import identity
from handlers.crm.events import CrmChanged, CrmKeyEvent
from handlers.crm.models import CrmCustomer, CrmEvent, CrmGroup
from handlers.crm.records import BindingRecord, CustomerRecord, EventRecord, GroupRecord
from handlers.crm.tagmap import digest
from scrm.adapters.db.engine import dialect_of, insert_ignore, table_of, upsert
from scrm.kernel.inbox import Inbox

# The CRM's tier ladder, lowest first: the shipped tag map's 客户等级 values (V1–V5, P = 私行),
# with the names banks commonly add. ``[crm] tier_order`` replaces it.
DEFAULT_TIER_ORDER: tuple[str, ...] = ("V0", "V1", "V2", "V3", "V4", "V5", "VIP", "VVIP", "P")


@dataclass(frozen=True)
class TierRule:
    """Which customer attribute is the tier (``[crm] tier_attribute``) and its order, lowest first."""

    attribute: str = "tier"
    order: tuple[str, ...] = DEFAULT_TIER_ORDER

    def kind(self, old: Any, new: Any) -> str | None:
        """``tier_up``/``tier_down`` when the tier moved between two known levels, else None."""
        if old is None or new is None or str(old) == str(new):
            return None
        rank = {v: i for i, v in enumerate(self.order)}
        if str(old) not in rank or str(new) not in rank:
            return None
        return "tier_up" if rank[str(new)] > rank[str(old)] else "tier_down"


@dataclass
class StoreResult:
    accepted: int = 0
    changed: list[str] = field(default_factory=list)  # crm_ids whose tags may need a sync
    new_events: int = 0


def _fold(records: Sequence[CustomerRecord]) -> dict[str, CustomerRecord]:
    """One record per customer, applied in order: a later row's attributes win key by key."""
    out: dict[str, CustomerRecord] = {}
    for rec in records:
        prev = out.get(rec.crm_id)
        if prev is not None:
            rec = rec.model_copy(update={"unionid": rec.unionid or prev.unionid,
                                         "external_userid": rec.external_userid or prev.external_userid,
                                         "attributes": {**prev.attributes, **rec.attributes}})
        out[rec.crm_id] = rec
    return out


def _merge(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    merged = {**old, **new}
    return {k: v for k, v in merged.items() if v is not None}


async def upsert_customers(session: AsyncSession, inbox: Inbox, records: Sequence[CustomerRecord],
                           now: datetime, *, tiers: TierRule | None = None) -> StoreResult:
    """Merge attributes (absent keys kept, ``null`` removes), link identities, queue a sync, and
    raise ``tier_up``/``tier_down`` where the tier attribute moved (see :func:`_tier_events`)."""
    result = StoreResult(accepted=len(records))
    tiers = tiers or TierRule()
    moves: list[tuple[str, str, Any, Any]] = []
    last = _fold(records)
    old = {c.crm_id: c for c in (await session.scalars(
        select(CrmCustomer).where(CrmCustomer.crm_id.in_(list(last))))).all()}
    rows: list[dict[str, Any]] = []
    marks: list[str] = []
    for crm_id, rec in last.items():
        before = old.get(crm_id)
        attrs = _merge(dict(before.attributes) if before else {}, rec.attributes)
        unionid = rec.unionid or (before.unionid if before else None)
        if before is not None and before.attributes == attrs and before.unionid == unionid:
            continue
        rows.append({"crm_id": crm_id, "attributes": attrs, "unionid": unionid, "updated_at": now})
        # From-and-to state: a customer changed back (V1 → V2 → V1) is a new change, not a repeat.
        was = repr(sorted(before.attributes.items())) if before else ""
        marks.append(f"{crm_id}:{digest([was])}>{digest([repr(sorted(attrs.items()))])}")
        if before is not None:
            kind = tiers.kind(before.attributes.get(tiers.attribute), attrs.get(tiers.attribute))
            if kind is not None:
                moves.append((crm_id, kind, before.attributes.get(tiers.attribute), attrs.get(tiers.attribute)))
    if rows:
        await session.execute(upsert(dialect_of(session), table_of(CrmCustomer), ["crm_id"],
                                     ["attributes", "unionid", "updated_at"]), rows)
    changed = {r["crm_id"] for r in rows}
    direct = {c: r.external_userid for c, r in last.items() if r.external_userid}
    changed |= set(await identity.bind(session, direct, identity.DIRECT, now))
    unionids = {c: r.unionid for c, r in last.items() if r.unionid and c not in direct}
    changed |= set(await identity.link_by_unionid(session, unionids, now))
    result.changed = sorted(changed)
    links = repr(sorted(direct.items())) + repr(sorted(unionids.items()))
    await queue_sync(session, inbox, result.changed, now, "|".join(sorted(marks)) + links)
    result.new_events = await _tier_events(session, inbox, moves, tiers, now)
    return result


async def _tier_events(session: AsyncSession, inbox: Inbox, moves: Sequence[tuple[str, str, Any, Any]],
                       tiers: TierRule, now: datetime) -> int:
    """A customer whose tier attribute moved between two known levels gets the tier key event, as
    if the CRM had sent it: stored in ``crm_event`` (its id names the move and the time, so a
    repeated push or import, which changes nothing, raises nothing) and dispatched once. A first
    tier (a new customer, or none before) or a value outside the order is no move."""
    if not moves:
        return 0
    records = [EventRecord(event_id=f"tier:{crm_id}:{old}>{new}@{now.isoformat()}"[:256], crm_id=crm_id,
                           kind=kind, at=now, payload={tiers.attribute: new, f"previous_{tiers.attribute}": old,
                                                        "tier": new, "source": "attribute"})
               for crm_id, kind, old, new in moves]
    return (await add_events(session, inbox, records, now)).new_events


async def add_bindings(session: AsyncSession, inbox: Inbox, records: Sequence[BindingRecord],
                       now: datetime) -> StoreResult:
    links = {r.crm_id: r.external_userid for r in records}
    await identity.ensure_rows(session, links, now)
    changed = await identity.bind(session, links, identity.EXPLICIT, now)
    await queue_sync(session, inbox, changed, now, "|".join(f"{c}>{e}" for c, e in sorted(links.items())))
    return StoreResult(accepted=len(records), changed=sorted(changed))


async def upsert_groups(session: AsyncSession, inbox: Inbox, records: Sequence[GroupRecord],
                        now: datetime) -> StoreResult:
    """A group's employer and payday, replaced whole (the last record of a chat wins); the
    calendar planner reads them at its next slot, so nothing is queued."""
    rows = {r.chat_id: {"chat_id": r.chat_id, "employer": r.employer, "payday": r.payday, "updated_at": now}
            for r in records}
    if rows:
        await session.execute(upsert(dialect_of(session), table_of(CrmGroup), ["chat_id"],
                                     ["employer", "payday", "updated_at"]), list(rows.values()))
    return StoreResult(accepted=len(records))


async def add_events(session: AsyncSession, inbox: Inbox, records: Sequence[EventRecord],
                     now: datetime) -> StoreResult:
    """Store key events once (by event_id) and hand each new one to the dispatcher."""
    unique = {r.event_id: r for r in records}
    known = set((await session.scalars(select(CrmEvent.event_id)
                                       .where(CrmEvent.event_id.in_(list(unique))))).all())
    fresh = [r for eid, r in unique.items() if eid not in known]
    if fresh:
        rows = [{"event_id": r.event_id, "crm_id": r.crm_id, "kind": r.kind, "at": r.at.astimezone(UTC),
                 "payload": r.payload} for r in fresh]
        await session.execute(insert_ignore(dialect_of(session), table_of(CrmEvent), ["event_id"]), rows)
    links = await _bound(session, [r.crm_id for r in fresh])
    for r in fresh:
        event = CrmKeyEvent(at=now, event_id=r.event_id, crm_id=r.crm_id, event_kind=r.kind, occurred_at=r.at,
                            details=r.payload, external_userid=links.get(r.crm_id))
        await inbox.add_internal(session, event, f"event:{r.event_id}")
    return StoreResult(accepted=len(records), new_events=len(fresh))


async def _bound(session: AsyncSession, crm_ids: Sequence[str]) -> dict[str, str]:
    from handlers.crm.models import Binding

    if not crm_ids:
        return {}
    rows = await session.execute(select(Binding.crm_id, Binding.external_userid)
                                 .where(Binding.crm_id.in_(set(crm_ids))))
    return {c: e for c, e in rows.all()}


async def queue_sync(session: AsyncSession, inbox: Inbox, crm_ids: Sequence[str], now: datetime,
                     content: str) -> None:
    """One :class:`CrmChanged` event for these customers; the same content twice is one event.

    Callers queue only real changes (a repeated push or import changes nothing and queues
    nothing), so the time is part of the key: the same change made again later, e.g. a binding
    moved back, is a new event rather than a duplicate of the first.
    """
    if not crm_ids:
        return
    generation = "c" + digest([content, now.isoformat(), *crm_ids])[:16]
    event = CrmChanged(at=now, crm_ids=tuple(crm_ids), generation=generation)
    await inbox.add_internal(session, event, f"changed:{generation}")
