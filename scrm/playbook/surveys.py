"""Customer feedback surveys (sop/feedback.yaml): NPS (0–10) or satisfaction (CSAT, 1–5).

A survey reaches a customer as a material with ``survey: <id>`` sent 1:1 by an SOP step (or a
reminder's script): its tracked link opens the service's own form page for that customer. The
shape is checked here; the cross-file references (the material's survey exists, the category
tags are declared manager tags) in :mod:`scrm.playbook.references`.

Categories are the standard NPS bands, and their CSAT counterparts:

=========  ========  ======
category   NPS 0–10  CSAT 1–5
=========  ========  ======
promoter   9–10      4–5
passive    7–8       3
detractor  0–6       1–2
=========  ========  ======
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from .fields import Ident, Strict, TagRef

FEEDBACK_FILE = "feedback.yaml"
"""Where the surveys live, relative to sop/."""

SurveyKind = Literal["nps", "csat"]
Category = Literal["promoter", "passive", "detractor"]
CATEGORIES: tuple[Category, ...] = ("promoter", "passive", "detractor")

# kind → (lowest score, highest score, lowest promoter score, lowest passive score)
SCALES: dict[str, tuple[int, int, int, int]] = {"nps": (0, 10, 9, 7), "csat": (1, 5, 4, 3)}
COMMENT_MAX_CHARS = 500


def score_range(kind: str) -> tuple[int, int]:
    """The lowest and highest score a ``kind`` survey accepts."""
    low, high, _, _ = SCALES[kind]
    return low, high


def category_of(kind: str, score: int) -> Category:
    """The band of ``score`` (already checked to be in range) on a ``kind`` survey."""
    _, _, promoter, passive = SCALES[kind]
    if score >= promoter:
        return "promoter"
    return "passive" if score >= passive else "detractor"


class SurveyTags(Strict):
    """The tag each category puts on the customer in WeCom (the other two are taken off)."""

    promoter: TagRef | None = None
    passive: TagRef | None = None
    detractor: TagRef | None = None

    def of(self, category: str) -> str | None:
        value: str | None = getattr(self, category)
        return value

    def named(self) -> list[tuple[str, str]]:
        """(category, tag) for every category that has a tag."""
        return [(c, t) for c in CATEGORIES if (t := self.of(c)) is not None]


class SurveyAlert(Strict):
    """Which answers put a task card before the customer's manager."""

    max_score: int | None = Field(
        None, description="scores at or below this alert the manager (default: the detractor band's top, "
                          "6 for nps, 2 for csat)")
    enabled: bool = Field(True, description="false: no card at all")


class Survey(Strict):
    """One survey of sop/feedback.yaml."""

    kind: SurveyKind = Field(description="nps: 0–10 likelihood to recommend; csat: satisfaction 1–5")
    question: Annotated[str, Field(min_length=1, max_length=200)]
    comment: Annotated[str, Field(max_length=100)] | None = Field(
        "您的建议（选填）", description="the label of the free-text box; null: no box")
    thanks: Annotated[str, Field(min_length=1, max_length=300)]
    valid_days: int = Field(14, ge=1, le=365, description="the link expires this many days after it was sent")
    tags: SurveyTags = Field(default_factory=SurveyTags)
    alert: SurveyAlert = Field(default_factory=SurveyAlert)

    def alert_problem(self) -> str | None:
        """Why ``alert.max_score`` does not fit the scale (the checker pins it to that key)."""
        low, high = score_range(self.kind)
        top = self.alert.max_score
        if top is not None and not low <= top < high:
            # The top score alerting would card every answer: not an alert any more.
            return f"must be {low}..{high - 1} on a {self.kind} survey, got {top}"
        return None

    def alerts(self, score: int) -> bool:
        """Whether an answer of ``score`` puts a card before the manager."""
        if not self.alert.enabled:
            return False
        top = self.alert.max_score
        if top is None:
            _, _, _, passive = SCALES[self.kind]
            top = passive - 1
        return score <= top


class FeedbackFile(Strict):
    """sop/feedback.yaml."""

    surveys: dict[Ident, Survey] = Field(default_factory=dict)
