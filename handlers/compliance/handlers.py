"""The compliance feature's event handlers."""

from __future__ import annotations

import logging
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.compliance.events import TrailPurge
from handlers.compliance.purge import purge
from scrm.kernel.clock import Clock
from scrm.kernel.config import Settings
from scrm.kernel.dispatch import Router

log = logging.getLogger("scrm.compliance")
router = Router("compliance")


@router.on(TrailPurge)
async def on_purge(event: TrailPurge, session: AsyncSession, clock: Clock, settings: Settings) -> None:
    today = clock.now().astimezone(ZoneInfo(settings.playbook.timezone)).date()
    gone = await purge(session, today)
    if gone:
        log.info("message trail: %d expired record(s) purged", gone)
