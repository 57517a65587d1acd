"""The sweep: everything WeCom lists as left behind by members who resigned, handed over.

``get_unassigned_list`` gives the customers of members who left and are not being transferred
(also those who left before the service was installed: the backfill relies on this); groups
come from ``groupchat/list`` (status 1, 离职待继承) per resigned owner. All reads happen first;
then one batch per resigned member is planned in the event's transaction.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Final, Literal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.contacts.api import Member
from handlers.succession.plan import Handover, Planned, plan_resigned
from handlers.succession.rules import Rules
from handlers.succession.settings import succession_settings
from scrm.adapters.wecom.api import WeComClient
from scrm.kernel.config import Settings
from scrm.kernel.outbox import Outbox
from scrm.kernel.scheduler import Scheduler

log = logging.getLogger("handlers.succession")
RESIGNED_PENDING: Final[Literal[1]] = 1  # groupchat/list status_filter: 离职待继承


async def read_unassigned(session: AsyncSession, wecom: WeComClient) -> dict[str, Handover]:
    """What WeCom lists as left behind, per resigned member (customers, then their groups)."""
    out: dict[str, Handover] = {}
    async for item in wecom.iter_unassigned():
        out.setdefault(item.handover_userid, Handover(item.handover_userid)).customers.append(item.external_userid)
    resigned = set((await session.scalars(select(Member.userid).where(Member.status == "resigned"))).all())
    for userid in sorted(resigned | set(out)):
        chats = [ref.chat_id async for ref in wecom.iter_group_chats(status_filter=RESIGNED_PENDING,
                                                                       owners=[userid])]
        if chats:
            out.setdefault(userid, Handover(userid)).groups.extend(chats)
    return out


async def plan_all(session: AsyncSession, outbox: Outbox, scheduler: Scheduler, settings: Settings, rules: Rules,
                   left: dict[str, Handover], *, now: datetime, suffix: str) -> list[Planned]:
    conf = succession_settings(settings)
    planned: list[Planned] = []
    for userid, handover in sorted(left.items()):
        result = await plan_resigned(session, outbox, scheduler, rules, handover, f"r:{userid}:{suffix}", now=now,
                                     first_follow=timedelta(seconds=conf.first_follow_s),
                                     retry_failed=timedelta(hours=conf.retry_failed_h))
        if result is not None:
            planned.append(result)
            log.info("succession: %s's customers and groups handed over", userid,
                     extra={"batch": result.batch_id, "items": result.items, "skipped": result.skipped})
    return planned
