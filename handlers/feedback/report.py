"""NPS by segment, tier, branch, manager or period (``scrm feedback report``).

Per row: answers, promoters, passives, detractors, NPS = (promoters − detractors) / answers ×
100, and the mean score. Surveys are never mixed (a 0–10 and a 1–5 score do not add up): the
report is per survey. Units are where the customer and manager stood when answering (kept on
each answer). A customer in several segments counts in each segment's row (segments overlap, so
those rows may sum to more than the whole); one in none counts under ``（无客群）``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from .models import FeedbackAnswer

UNITS = ("segment", "tier", "branch", "manager", "week", "month")
NO_SEGMENT = "（无客群）"
NO_TIER = "（未分层）"
NO_BRANCH = "（未分配部门）"


@dataclass
class Row:
    """One line: a survey's answers in one unit (``unit`` "" for the whole survey)."""

    survey: str
    unit: str
    answers: int = 0
    promoters: int = 0
    passives: int = 0
    detractors: int = 0
    score_sum: int = 0

    def add(self, category: str, score: int) -> None:
        self.answers += 1
        self.score_sum += score
        if category == "promoter":
            self.promoters += 1
        elif category == "passive":
            self.passives += 1
        else:
            self.detractors += 1

    @property
    def nps(self) -> float | None:
        return (self.promoters - self.detractors) * 100 / self.answers if self.answers else None

    @property
    def mean(self) -> float | None:
        return self.score_sum / self.answers if self.answers else None

    def as_json(self) -> dict[str, object]:
        return {"survey": self.survey, "unit": self.unit, "answers": self.answers, "promoters": self.promoters,
                "passives": self.passives, "detractors": self.detractors,
                "nps": None if self.nps is None else round(self.nps, 1),
                "mean": None if self.mean is None else round(self.mean, 2)}


def units_of(by: str | None, day: date, branch: str, tier: str | None, segments: Iterable[str],
             sender: str) -> list[str]:
    """The rows one answer counts in under ``by``."""
    if by is None:
        return [""]
    if by == "segment":
        return list(dict.fromkeys(segments)) or [NO_SEGMENT]
    if by == "tier":
        return [tier or NO_TIER]
    if by == "branch":
        return [branch or NO_BRANCH]
    if by == "manager":
        return [sender]
    if by == "week":  # the ISO week, named by its Monday
        return [(day - timedelta(days=day.weekday())).isoformat()]
    if by == "month":
        return [f"{day:%Y-%m}"]
    raise ValueError(f"unknown unit {by!r}")


async def nps_rows(session: AsyncSession, *, since: date, until: date, by: str | None = None,
                   survey: str | None = None) -> list[Row]:
    """The rows of the report over the local days ``since``..``until``, per survey (sorted), the
    survey's whole first, then its units sorted."""
    q = select(FeedbackAnswer.survey, FeedbackAnswer.category, FeedbackAnswer.score, FeedbackAnswer.day,
               FeedbackAnswer.branch, FeedbackAnswer.tier, FeedbackAnswer.segments, FeedbackAnswer.sender
               ).where(FeedbackAnswer.day >= since, FeedbackAnswer.day <= until)
    if survey is not None:
        q = q.where(FeedbackAnswer.survey == survey)
    rows: dict[tuple[str, str], Row] = {}
    for sid, category, score, day, branch, tier, segments, sender in (await session.execute(q)).all():
        keys = [""] if by is None else ["", *units_of(by, day, branch, tier, segments or [], sender)]
        for unit in keys:
            rows.setdefault((sid, unit), Row(sid, unit)).add(category, int(score))
    return [rows[k] for k in sorted(rows)]


def render(rows: list[Row], *, by: str | None) -> str:
    """A plain table; the whole of each survey is the line with unit ``*``."""
    head = ["survey", by or "unit", "answers", "promoters", "passives", "detractors", "nps", "mean"]
    lines = [head] + [[r.survey, r.unit or "*", str(r.answers), str(r.promoters), str(r.passives),
                       str(r.detractors), "-" if r.nps is None else f"{r.nps:.1f}",
                       "-" if r.mean is None else f"{r.mean:.2f}"] for r in rows]
    widths = [max(len(r[i]) for r in lines) for i in range(len(head))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in lines)
