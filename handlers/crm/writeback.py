"""Detect manager-made tag changes on a relation and queue them for the CRM webhook.

Compares the relation's manager-owned tags (every tag outside the CRM-owned groups) in the local
mirror, just refreshed from WeCom by the contacts handler, with the set last reported
(``crm_writeback_state``). A difference becomes one ``crm.webhook`` outbox action keyed by the
inbox event, so a replayed event reports nothing twice.

The last-reported set is the diff's baseline, so it must exist before a manager's first edit: a
contact added under the service records it on add, a contact that existed before the service
records it when the backfill (or the CRM's discovery) mirrors the relation from WeCom
(:func:`baselines`). A relation edited before any baseline was recorded has no knowable earlier
set (WeCom tells only the current one, just re-read by the contacts handler): its first report
says so (``"baseline": true``, the full current ``tags``, nothing claimed as added or removed)
instead of listing every tag it already had as "added" and dropping the removals.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.crm.models import CrmWritebackState
from handlers.tags import api as tagcatalog
from handlers.tags.api import FollowTag, Tag, TagGroup
from scrm.adapters.db.engine import dialect_of, insert_ignore, table_of, upsert
from scrm.kernel.outbox import PRIORITY_DEFAULT, Outbox

_TAGS_OF = select(table_of(FollowTag).c.tag_id).where(table_of(FollowTag).c.userid == bindparam("u"),
                                                    table_of(FollowTag).c.external_userid == bindparam("e"))


async def manager_tags(session: AsyncSession, userid: str, external_userid: str,
                       crm_tag_ids: frozenset[str]) -> list[str]:
    rows = await session.scalars(_TAGS_OF, {"u": userid, "e": external_userid})
    return without_crm_tags(rows.all(), crm_tag_ids)


def without_crm_tags(tag_ids: Iterable[str], crm_tag_ids: frozenset[str]) -> list[str]:
    """A relation's manager-owned tags (those the CRM does not own), sorted: what is reported."""
    return sorted(t for t in tag_ids if t not in crm_tag_ids)


async def snapshot(session: AsyncSession, userid: str, external_userid: str, tag_ids: list[str],
                   now: datetime) -> None:
    row = {"userid": userid, "external_userid": external_userid, "tag_ids": tag_ids, "reported_at": now}
    await session.execute(upsert(dialect_of(session), table_of(CrmWritebackState),
                                 ["userid", "external_userid"], ["tag_ids", "reported_at"]), row)


async def report_changes(session: AsyncSession, outbox: Outbox, *, userid: str, external_userid: str,
                         crm_id: str | None, crm_tag_ids: frozenset[str], key: str, now: datetime,
                         enabled: bool) -> dict[str, Any] | None:
    """Queue the change since the last report (if any); returns the webhook body queued."""
    current = await manager_tags(session, userid, external_userid, crm_tag_ids)
    before_row = await session.get(CrmWritebackState, (userid, external_userid), populate_existing=True)
    if before_row is None:
        # Never recorded: the earlier set is unknown, so claim no change, report the whole set.
        added: list[str] = []
        removed: list[str] = []
    else:
        before = set(before_row.tag_ids)
        added, removed = sorted(set(current) - before), sorted(before - set(current))
        if not added and not removed:
            return None
    await snapshot(session, userid, external_userid, current, now)
    if not enabled or crm_id is None:
        return None  # no CRM to tell, or a contact the CRM does not know (yet)
    names = await tagcatalog.names_of(session, [*added, *removed, *current])
    body: dict[str, Any] = {
        "type": "tags.changed", "crm_id": crm_id, "external_userid": external_userid, "userid": userid,
        "at": now.isoformat(),
        "added": [{"tag_id": t, "name": names.get(t, "")} for t in added],
        "removed": [{"tag_id": t, "name": names.get(t, "")} for t in removed],
        "tags": [{"tag_id": t, "name": names.get(t, "")} for t in current],
    }
    if before_row is None:
        body["baseline"] = True
    await outbox.add_action(session, key, "crm.webhook", {"body": body}, priority=PRIORITY_DEFAULT,
                            lane=f"crm:{crm_id}")
    return body


class _TagGroupSpec(Protocol):
    @property
    def owner(self) -> str: ...


async def crm_owned_tag_ids(session: AsyncSession, tag_groups: Mapping[str, _TagGroupSpec]) -> frozenset[str]:
    """Ids of the tags in the groups the tag map gives to the CRM (``owner: crm``)."""
    names = [g for g, spec in tag_groups.items() if spec.owner == "crm"]
    if not names:
        return frozenset()
    rows = await session.scalars(select(Tag.tag_id).join(TagGroup, Tag.group_id == TagGroup.group_id)
                                 .where(TagGroup.name.in_(names)))
    return frozenset(rows.all())


async def baselines(session: AsyncSession, relations: Iterable[tuple[str, str, Sequence[str]]],
                    crm_tag_ids: frozenset[str], now: datetime) -> None:
    """Start the record of relations just mirrored from WeCom with their manager-owned tags
    ``(userid, external_userid, tag_ids)``; a relation already recorded keeps its record (it is
    what the CRM was last told, and its next report is the difference from that)."""
    rows = [{"userid": u, "external_userid": e, "tag_ids": sorted({t for t in tags if t not in crm_tag_ids}),
             "reported_at": now} for u, e, tags in relations]
    if rows:
        await session.execute(insert_ignore(dialect_of(session), table_of(CrmWritebackState),
                                            ["userid", "external_userid"]), rows)
