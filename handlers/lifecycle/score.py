"""Pure scoring: a customer's tier, segments, value grade, RFM bands and lifecycle stage, from
their CRM attributes, what the service saw of them (:mod:`.nightly`'s signals) and yesterday's result.

Hysteresis lives here: a tier changes only once AUM is clearly past a boundary, a stage is kept
while its rule still holds with slack, and never left before ``min_stay_days``.

The nightly run scores a million customers, so the rules are worked out once into a
:class:`Scorer` (rules compiled to closures, bounds with their hysteresis multiplied out, names
indexed) and each customer costs a few dictionary reads and comparisons. The module's functions
are the same scoring for one customer.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from handlers.crm.api import attribute_values as values_of

from .criteria import amount
from .rules import Lifecycle, Segmentation

RFM_PARTS = (("recency", "R"), ("frequency", "F"), ("monetary", "M"))


class Scorer:
    """Both files' rules, worked out once for scoring many customers."""

    def __init__(self, seg: Segmentation, lc: Lifecycle | None = None) -> None:
        lc = lc or Lifecycle()
        h = seg.tier_hysteresis
        self.tier_names = tuple(t.name for t in seg.tiers)
        self._tier_rank = {t.name: i for i, t in enumerate(seg.tiers)}
        self._floors = tuple(t.floor for t in seg.tiers)  # lowest first
        self._floors_up = tuple(t.floor * (1 + h) for t in seg.tiers)  # to move up into the tier
        self._floors_down = tuple(t.floor * (1 - h) for t in seg.tiers)  # to fall out of it
        self._segments = tuple((s.name, s.rule.compile()) for s in seg.segments)
        self._weight = sum(f.weight for f in seg.factors)
        self._factors = tuple((f.attribute, f.weight, f.cap) for f in seg.factors)
        self._grades = tuple((g.floor, g.name) for g in seg.grades)  # highest first
        self._rfm = tuple((letter, part == "recency", seg.rfm[part].attribute, *seg.rfm[part].bounds)
                          for part, letter in RFM_PARTS) if seg.rfm else ()
        # Each stage's rule as it is (slack 0) and as the current stage is judged (with slack);
        # the last stage holds for everyone.
        self._stages = tuple((s.name, s.rule.compile(), s.rule.compile(lc.hysteresis)) for s in lc.stages[:-1])
        self._last_stage = lc.stages[-1].name if lc.stages else None
        self._stage_names = frozenset(s.name for s in lc.stages)
        self._min_stay = lc.min_stay_days

    def tier(self, aum: float | None, current: str | None) -> str | None:
        """The tier for ``aum`` given the current one: up only at ``floor × (1 + h)``, down only
        below the current floor ``× (1 − h)`` (then straight to where AUM is)."""
        if not self.tier_names:
            return None
        value = aum or 0
        plain = 0
        for i, floor in enumerate(self._floors):
            if value >= floor:
                plain = i
        now = self._tier_rank.get(current) if current is not None else None
        if now is None or aum is None:
            return self.tier_names[plain] if now is None else current
        if plain > now:
            up = now
            for i in range(now + 1, plain + 1):
                if aum >= self._floors_up[i]:
                    up = i
            return self.tier_names[up]
        if plain < now and aum < self._floors_down[now]:
            return self.tier_names[plain]
        return current

    def segments(self, attributes: Mapping[str, Any]) -> tuple[str, ...]:
        """Every segment whose rule holds, in the file's order (a customer may be in several)."""
        return tuple([name for name, holds in self._segments if holds(attributes)])

    def score(self, attributes: Mapping[str, Any]) -> float:
        """0..100: the weighted mean of each factor scaled to its cap (full marks at or above it)."""
        if self._weight <= 0:
            return 0.0
        parts = sum([weight * min(max(measure(attributes.get(attribute)), 0.0) / cap, 1.0)
                     for attribute, weight, cap in self._factors])
        return round(100.0 * parts / self._weight, 2)

    def grade(self, score: float) -> str | None:
        for floor, name in self._grades:
            if score >= floor:
                return name
        return None

    def rfm(self, attributes: Mapping[str, Any], today: date) -> str | None:
        """``"R3F2M1"``-style bands: 3 best, 1 worst or unknown."""
        if not self._rfm:
            return None
        out = []
        for letter, recency, attribute, best, good in self._rfm:
            raw = attributes.get(attribute)
            if recency:
                day = _day(raw)
                ago = (today - day).days if day is not None else None
                band = 1 if ago is None else 3 if ago <= best else 2 if ago <= good else 1
            else:
                n = amount(raw)
                band = 1 if n is None else 3 if n >= best else 2 if n >= good else 1
            out.append(f"{letter}{band}")
        return "".join(out)

    def stage(self, values: Mapping[str, Any], current: str | None, since: date | None, today: date) -> str | None:
        """The first stage whose rule holds — the current one judged with slack — unless the
        customer has not yet stayed ``min_stay_days`` in the current one."""
        if self._last_stage is None:
            return None
        found = self._last_stage
        for name, holds, holds_with_slack in self._stages:
            if (holds_with_slack if name == current else holds)(values):
                found = name
                break
        if current is None or current not in self._stage_names or found == current:
            return found
        if since is not None and (today - since).days < self._min_stay:
            return current
        return found


def tier_of(seg: Segmentation, aum: float | None, current: str | None) -> str | None:
    return Scorer(seg).tier(aum, current)


def segments_of(seg: Segmentation, attributes: Mapping[str, Any]) -> tuple[str, ...]:
    return Scorer(seg).segments(attributes)


def measure(raw: Any) -> float:
    """A factor's value: a number, else how many values a list attribute holds."""
    number = amount(raw)
    return number if number is not None else float(len(values_of(raw)))


def score_of(seg: Segmentation, attributes: Mapping[str, Any]) -> float:
    return Scorer(seg).score(attributes)


def grade_of(seg: Segmentation, score: float) -> str | None:
    return Scorer(seg).grade(score)


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
    return Scorer(seg).rfm(attributes, today)


def stage_of(lc: Lifecycle, values: Mapping[str, Any], current: str | None, since: date | None,
             today: date) -> str | None:
    return Scorer(Segmentation(), lc).stage(values, current, since, today)
