"""Counters per material and per SOP step: sends, opens, unique openers, open rate.

Occurrences passed to ``make_link`` are opaque; by convention ``<step key>@<when>`` (e.g.
``sop:onboarding:day3@2026-11-23``) so that stats group every occurrence of a step together.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.radar.models import RadarClick, RadarSend


def step_of(occurrence: str | None) -> str:
    """The SOP step an occurrence belongs to ("" for sends outside any SOP)."""
    return (occurrence or "").split("@", 1)[0]


@dataclass
class Counter:
    """One line of ``scrm radar stats``."""

    material: str
    step: str = ""
    sends: int = 0
    opens: int = 0
    openers: set[str] = field(default_factory=set)

    @property
    def unique_openers(self) -> int:
        return len(self.openers)

    @property
    def open_rate(self) -> float | None:
        """Unique openers per send; None when nothing was sent (e.g. a forwarded old link)."""
        return self.unique_openers / self.sends if self.sends else None


async def counters(session: AsyncSession, *, material: str | None = None, since: datetime | None = None,
                   by_step: bool = False) -> list[Counter]:
    """Counters per material (or per material and step), sorted by material then step."""
    sends = select(RadarSend.material_id, RadarSend.occurrence, func.count()).group_by(
        RadarSend.material_id, RadarSend.occurrence)
    clicks = select(RadarClick.material_id, RadarClick.occurrence, RadarClick.external_userid, func.count()).group_by(
        RadarClick.material_id, RadarClick.occurrence, RadarClick.external_userid)
    if material is not None:
        sends = sends.where(RadarSend.material_id == material)
        clicks = clicks.where(RadarClick.material_id == material)
    if since is not None:
        sends = sends.where(RadarSend.at >= since)
        clicks = clicks.where(RadarClick.at >= since)
    out: dict[tuple[str, str], Counter] = {}

    def at(mid: str, occurrence: str | None) -> Counter:
        key = (mid, step_of(occurrence) if by_step else "")
        return out.setdefault(key, Counter(*key))

    for mid, occurrence, n in (await session.execute(sends)).all():
        at(mid, occurrence).sends += int(n)
    for mid, occurrence, viewer, n in (await session.execute(clicks)).all():
        c = at(mid, occurrence)
        c.opens += int(n)
        if viewer:
            c.openers.add(viewer)
    return [out[k] for k in sorted(out)]
