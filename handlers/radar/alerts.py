"""Manager alert aggregation: one alert per (manager, customer, material) per window.

State is a table (``radar_alert``) and time comes from the event, so restarts, replays and
several instances agree. Clicks inside the window are counted for the daily digest instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.radar.models import RadarAlert, RadarClick


async def should_alert(session: AsyncSession, sender: str, customer: str, material: str, at: datetime,
                       window: timedelta) -> bool:
    """True when this click gets its own alert; otherwise it is counted for the digest."""
    row = await session.get(RadarAlert, (sender, customer, material))
    if row is None:
        session.add(RadarAlert(sender=sender, external_userid=customer, material_id=material,
                               last_alert_at=at, suppressed=0))
        await session.flush()
        return True
    if row.last_alert_at is None or at - row.last_alert_at >= window:
        row.last_alert_at = at
        await session.flush()
        return True
    row.suppressed += 1
    await session.flush()
    return False


async def opens_today(session: AsyncSession, customer: str, material: str, at: datetime, tz: str) -> int:
    """How often ``customer`` opened ``material`` on ``at``'s local day, up to and including ``at``."""
    local = at.astimezone(ZoneInfo(tz))
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    query = select(func.count()).select_from(RadarClick).where(
        RadarClick.external_userid == customer, RadarClick.material_id == material,
        RadarClick.at >= midnight, RadarClick.at <= at)
    return int((await session.execute(query)).scalar_one())


async def take_digest(session: AsyncSession) -> dict[str, Sequence[tuple[str, str, int]]]:
    """Suppressed counts per manager as (customer, material, count); resets them to zero."""
    rows = (await session.execute(
        select(RadarAlert.sender, RadarAlert.external_userid, RadarAlert.material_id, RadarAlert.suppressed)
        .where(RadarAlert.suppressed > 0)
        .order_by(RadarAlert.sender, RadarAlert.external_userid, RadarAlert.material_id))).all()
    out: dict[str, list[tuple[str, str, int]]] = {}
    for sender, customer, material, count in rows:
        out.setdefault(sender, []).append((customer, material, int(count)))
    if rows:
        await session.execute(update(RadarAlert).where(RadarAlert.suppressed > 0).values(suppressed=0))
    return dict(out)
