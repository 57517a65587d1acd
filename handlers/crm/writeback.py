"""Detect manager-made tag changes on a relation and queue them for the CRM webhook.

Compares the relation's manager-owned tags (every tag outside the CRM-owned groups) in the local
mirror, just refreshed from WeCom by the contacts handler, with the set last reported
(``crm_writeback_state``). A difference becomes one ``crm.webhook`` outbox action keyed by the
inbox event, so a replayed event reports nothing twice.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.crm.models import CrmWritebackState
from handlers.tags import api as tagcatalog
from handlers.tags.api import FollowTag
from scrm.adapters.db.engine import dialect_of, table_of, upsert
from scrm.kernel.outbox import PRIORITY_DEFAULT, Outbox

_TAGS_OF = select(table_of(FollowTag).c.tag_id).where(table_of(FollowTag).c.userid == bindparam("u"),
                                                    table_of(FollowTag).c.external_userid == bindparam("e"))


async def manager_tags(session: AsyncSession, userid: str, external_userid: str,
                       crm_tag_ids: frozenset[str]) -> list[str]:
    rows = await session.scalars(_TAGS_OF, {"u": userid, "e": external_userid})
    return sorted(t for t in rows.all() if t not in crm_tag_ids)


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
    before_row = await session.get(CrmWritebackState, (userid, external_userid))
    before = set(before_row.tag_ids) if before_row is not None else set()
    added, removed = sorted(set(current) - before), sorted(before - set(current))
    if not added and not removed:
        return None
    await snapshot(session, userid, external_userid, current, now)
    if not enabled or crm_id is None:
        return None  # no CRM to tell, or a contact the CRM does not know (yet)
    names = await tagcatalog.names_of(session, [*added, *removed, *current])
    body = {
        "type": "tags.changed", "crm_id": crm_id, "external_userid": external_userid, "userid": userid,
        "at": now.isoformat(),
        "added": [{"tag_id": t, "name": names.get(t, "")} for t in added],
        "removed": [{"tag_id": t, "name": names.get(t, "")} for t in removed],
        "tags": [{"tag_id": t, "name": names.get(t, "")} for t in current],
    }
    await outbox.add_action(session, key, "crm.webhook", {"body": body}, priority=PRIORITY_DEFAULT,
                            lane=f"crm:{crm_id}")
    return body
