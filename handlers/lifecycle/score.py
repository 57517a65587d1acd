"""Pure scoring: a customer's tier, segments, value grade, RFM bands and lifecycle stage, from
their CRM attributes, what the service saw of them (:mod:`.signals`) and yesterday's result.

Hysteresis lives here: a tier changes only once AUM is clearly past a boundary, a stage is kept
while its rule still holds with slack, and never left before ``min_stay_days``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from handlers.crm.api import attribute_values as values_of

from .criteria import amount
from .rules import Lifecycle, Segmentation


def tier_of(seg: Segmentation, aum: float | None, current: str | None) -> str | None:
    """The tier for ``aum`` given the current one: up only at ``floor × (1 + h)``, down only
    below the current floor ``× (1 − h)`` (then straight to where AUM is)."""
    if not seg.tiers:
        return None
    plain = max((i for i, t in enumerate(seg.tiers) if (aum or 0) >= t.floor), default=0)
    now = next((i for i, t in enumerate(seg.tiers) if t.name == current), None)
    if now is None or aum is None:
        return seg.tiers[plain].name if now is None else current
    h = seg.tier_hysteresis
    if plain > now:
        up = max(i for i, t in enumerate(seg.tiers) if i <= plain and (i <= now or aum >= t.floor * (1 + h)))
        return seg.tiers[up].name
    if plain < now and aum < seg.tiers[now].floor * (1 - h):
        return seg.tiers[plain].name
    return current


def segments_of(seg: Segmentation, attributes: Mapping[str, Any]) -> tuple[str, ...]:
    """Every segment whose rule holds, in the file's order (a customer may be in several)."""
    return tuple(s.name for s in seg.segments if s.rule.holds(attributes))


def measure(raw: Any) -> float:
    """A factor's value: a number, else how many values a list attribute holds."""
    number = amount(raw)
    return number if number is not None else float(len(values_of(raw)))


def score_of(seg: Segmentation, attributes: Mapping[str, Any]) -> float:
    """0..100: the weighted mean of each factor scaled to its cap (full marks at or above it)."""
    total = sum(f.weight for f in seg.factors)
    if total <= 0:
        return 0.0
    parts = sum(f.weight * min(max(measure(attributes.get(f.attribute)), 0.0) / f.cap, 1.0) for f in seg.factors)
    return round(100.0 * parts / total, 2)


def grade_of(seg: Segmentation, score: float) -> str | None:
    return next((g.name for g in seg.grades if score >= g.floor), None)


def _day(raw: Any) -> date | None:
    if isinstance(raw, date):
        return raw
    if isinstance(raw, str) and len(raw) >= 10:
        try:
            return date.fromisoformat(raw[:10])
        except ValueError:
            return None
    return None


def rfm_of(seg: Segmentation, attributes: Mapping[str, Any], today: date) -> str | None:
    """``"R3F2M1"``-style bands: 3 best, 1 worst or unknown."""
    if not seg.rfm:
        return None
    out = []
    for part, letter in (("recency", "R"), ("frequency", "F"), ("monetary", "M")):
        spec = seg.rfm[part]
        raw = attributes.get(spec.attribute)
        if part == "recency":
            day = _day(raw)
            ago = (today - day).days if day is not None else None
            band = 1 if ago is None else 3 if ago <= spec.bounds[0] else 2 if ago <= spec.bounds[1] else 1
        else:
            n = amount(raw)
            band = 1 if n is None else 3 if n >= spec.bounds[0] else 2 if n >= spec.bounds[1] else 1
        out.append(f"{letter}{band}")
    return "".join(out)


def stage_of(lc: Lifecycle, values: Mapping[str, Any], current: str | None, since: date | None,
             today: date) -> str | None:
    """The first stage whose rule holds — the current one judged with slack — unless the
    customer has not yet stayed ``min_stay_days`` in the current one."""
    if not lc.stages:
        return None
    found = next(s.name for s in lc.stages
                 if s.rule.holds(values, slack=lc.hysteresis if s.name == current else 0.0) or s is lc.stages[-1])
    if current is None or lc.stage(current) is None or found == current:
        return found
    if since is not None and (today - since).days < lc.min_stay_days:
        return current
    return found
