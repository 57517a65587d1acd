"""Read from WeCom the contacts the CRM links to but we have not mirrored yet.

A binding may name a customer who was added before the service ran (no add event ever reached
us). Tag sync works on mirrored follow relations, so such customers are read once with
externalcontact/get (all WeCom reads first, then the writes, for SQLite's write lock).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.contacts import api as follows
from handlers.contacts.api import Follow
from handlers.crm import writeback
from handlers.crm.models import Binding
from scrm.adapters.wecom.errors import ErrCode, WeComError

log = logging.getLogger("handlers.crm.discover")
MAX_READS = 200  # per call: a huge first import is mirrored by the contact sync, not here


async def unmirrored(session: AsyncSession, crm_ids: Sequence[str]) -> list[str]:
    """Bound external_userids of ``crm_ids`` with no follow row."""
    if not crm_ids:
        return []
    has_follow = select(Follow.id).where(Follow.external_userid == Binding.external_userid).exists()
    rows = await session.scalars(select(Binding.external_userid)
                                 .where(Binding.crm_id.in_(list(crm_ids)), ~has_follow).limit(MAX_READS))
    return list(dict.fromkeys(rows.all()))


async def read_unmirrored(session: AsyncSession, wecom: Any, crm_ids: Sequence[str]) -> list[Any]:
    """externalcontact/get for each bound contact we have not mirrored (reads only)."""
    infos = []
    for ext in await unmirrored(session, crm_ids):
        try:
            infos.append(await wecom.get_external_contact(ext))
        except WeComError as exc:
            if exc.errcode not in (ErrCode.INVALID_EXTERNAL_USERID, ErrCode.NOT_EXTERNAL_CONTACT):
                raise
            log.info("CRM binding names an unknown contact; it waits", extra={"external_userid": ext})
    return infos


async def write_contacts(session: AsyncSession, infos: Sequence[Any], now: datetime,
                         crm_tag_ids: frozenset[str] | None = None) -> None:
    """Mirror what :func:`read_unmirrored` read (writes only). With ``crm_tag_ids``, each
    relation's manager-owned tags also start its write-back record, so a manager's first edit is
    reported as the difference from them."""
    for info in infos:
        ext = info.external_contact.external_userid
        await follows.upsert_customer(session, info.external_contact, now)
        for f in info.follow_user:
            await follows.upsert_follow(session, ext, f, now)
            await follows.set_follow_tags(session, f.userid, ext, follows.corp_tag_ids(f), now)
        if crm_tag_ids is not None:
            await writeback.baselines(session, [(f.userid, ext, follows.corp_tag_ids(f)) for f in info.follow_user],
                                      crm_tag_ids, now)
