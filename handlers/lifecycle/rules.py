"""The two files ops admins own: ``sop/segments.yaml`` (三分: tiers, segments, grade, RFM) and
``sop/lifecycle.yaml`` (stages). Read with the playbook's YAML reader (YAML 1.2, every key's
line), so every problem is one ``file:line: key.path: message`` like the rest of ``sop/``.

A missing file means the feature has nothing to compute (no tiers, no stages): a bank that has
not written them yet runs as before. Pure; the caller decides when to read.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scrm.playbook.issues import PlaybookError, PlaybookIssue
from scrm.playbook.rulefile import RuleReader
from scrm.playbook.yamlsrc import SourceFile, read_yaml

from .criteria import Rule, amount, parse_rule

SEGMENTS_FILE = "segments.yaml"
LIFECYCLE_FILE = "lifecycle.yaml"
NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
MAX_HYSTERESIS = 0.5
#: What a stage rule may test besides ``crm.<attribute>`` (see :mod:`.signals`).
SIGNALS = ("days_since_added", "days_since_contact", "radar_opens", "crm_events", "aum_trend")


@dataclass(frozen=True)
class Tier:
    name: str
    label: str
    floor: float  # the AUM from which a customer belongs here (before hysteresis)


@dataclass(frozen=True)
class Segment:
    name: str
    label: str
    rule: Rule


@dataclass(frozen=True)
class Factor:
    """One part of the value score: ``attribute`` scaled to 0..1 at ``cap``, times ``weight``."""

    name: str
    attribute: str
    weight: float
    cap: float


@dataclass(frozen=True)
class Grade:
    name: str
    floor: float  # lowest score (0..100) of the grade


@dataclass(frozen=True)
class RfmPart:
    """R, F or M: scored 3, 2 or 1 by the first bound the value meets (``days``: at most that
    many days ago; ``at_least``: that much or more); 1 when unknown."""

    attribute: str
    bounds: tuple[float, float]


@dataclass(frozen=True)
class Segmentation:
    tiers: tuple[Tier, ...] = ()  # lowest floor first
    tier_attribute: str = "aum"
    tier_hysteresis: float = 0.0
    segments: tuple[Segment, ...] = ()
    factors: tuple[Factor, ...] = ()
    grades: tuple[Grade, ...] = ()  # highest floor first
    rfm: Mapping[str, RfmPart] = field(default_factory=dict)  # recency, frequency, monetary
    source: str = "(no segments.yaml)"

    def tier(self, name: str) -> Tier | None:
        return next((t for t in self.tiers if t.name == name), None)


@dataclass(frozen=True)
class Stage:
    name: str
    label: str
    rule: Rule
    churn_risk: bool = False


@dataclass(frozen=True)
class Lifecycle:
    stages: tuple[Stage, ...] = ()  # first match wins; the last one holds for everyone
    window_days: int = 30
    trend_days: int = 30
    hysteresis: float = 0.0
    min_stay_days: int = 0
    source: str = "(no lifecycle.yaml)"

    def stage(self, name: str) -> Stage | None:
        return next((s for s in self.stages if s.name == name), None)


def load_segmentation(sop_dir: Path) -> Segmentation:
    """``sop_dir/segments.yaml`` (empty when absent); raises :class:`PlaybookError` listing every problem."""
    src = _read(sop_dir, SEGMENTS_FILE)
    if src is None:
        return Segmentation()
    result, problems = _Reader(src).segmentation()
    if problems:
        raise PlaybookError(problems)
    return result


def load_lifecycle(sop_dir: Path) -> Lifecycle:
    """``sop_dir/lifecycle.yaml`` (no stages when absent); raises :class:`PlaybookError`."""
    src = _read(sop_dir, LIFECYCLE_FILE)
    if src is None:
        return Lifecycle()
    result, problems = _Reader(src).lifecycle()
    if problems:
        raise PlaybookError(problems)
    return result


def check(sop_dir: Path) -> list[PlaybookIssue]:
    """Every problem of both files (``scrm segments check``, ``scrm sop validate``)."""
    issues: list[PlaybookIssue] = []
    for load in (load_segmentation, load_lifecycle):
        try:
            load(sop_dir)
        except PlaybookError as exc:
            issues += exc.errors
    return issues


def _read(sop_dir: Path, name: str) -> SourceFile | None:
    path = sop_dir / name
    if not path.exists():
        return None
    source, issues = read_yaml(path, f"{sop_dir.name}/{name}")
    if source is None or issues:
        raise PlaybookError(issues)
    return source


class _Reader(RuleReader):
    """Walks one file, collecting every problem instead of stopping at the first (the shared
    :class:`RuleReader`, whose ``mapping`` of a non-mapping is empty; here the callers tell a
    missing section, ``None``, from an empty one)."""

    def section(self, value: Any, at: tuple[Any, ...], keys: tuple[str, ...], *, required: tuple[str, ...] = ()
                ) -> dict[str, Any] | None:
        """:meth:`RuleReader.mapping`, or None (one problem said) when ``value`` is not a mapping."""
        if not isinstance(value, dict):
            self.bad(at, f"must be a mapping ({', '.join(keys)})")
            return None
        return self.mapping(value, at, keys, required=required)

    def name(self, value: Any, at: tuple[Any, ...]) -> str:
        if not isinstance(value, str) or not NAME.match(value):
            self.bad(at, f"must be a lower-case name (a-z, 0-9, _), got {value!r}")
            return ""
        return value

    def text(self, value: Any, at: tuple[Any, ...], default: str) -> str:
        if value is None:
            return default
        if not isinstance(value, str) or not value.strip():
            self.bad(at, "must be a non-empty text")
            return default
        return value.strip()

    def number(self, value: Any, at: tuple[Any, ...], *, low: float = 0.0, high: float | None = None) -> float:
        n = amount(value)
        if n is None or n < low or (high is not None and n > high):
            span = f"{low:g}..{high:g}" if high is not None else f"≥ {low:g}"
            self.bad(at, f"must be a number {span} (50万 works), got {value!r}")
            return low
        return n

    def rule(self, value: Any, at: tuple[Any, ...], fields: tuple[str, ...] | None = None) -> Rule:
        rule, problems = parse_rule(value)
        for sub, message in problems:
            self.bad((*at, *sub), message)
        if rule is not None and fields is not None:
            for f in rule.fields:
                if f not in fields and not f.startswith("crm."):
                    self.bad((*at, f), f"unknown field; expected crm.<attribute> or one of {', '.join(fields)}")
        return rule or Rule()

    # -- segments.yaml -----------------------------------------------------------------------
    def segmentation(self) -> tuple[Segmentation, list[PlaybookIssue]]:
        data = self.section(self.src.data, (), ("tiers", "segments", "grade", "rfm")) or {}
        tiers, attribute, hysteresis = self.tiers(data.get("tiers"))
        segments = self.segments(data.get("segments"))
        factors, grades = self.grade(data.get("grade"))
        rfm = self.rfm(data.get("rfm"))
        return Segmentation(tiers=tiers, tier_attribute=attribute, tier_hysteresis=hysteresis, segments=segments,
                            factors=factors, grades=grades, rfm=rfm, source=self.src.display), self.problems

    def tiers(self, raw: Any) -> tuple[tuple[Tier, ...], str, float]:
        if raw is None:
            return (), "aum", 0.0
        at: tuple[Any, ...] = ("tiers",)
        data = self.section(raw, at, ("attribute", "hysteresis", "levels"), required=("levels",)) or {}
        attribute = self.text(data.get("attribute"), (*at, "attribute"), "aum")
        hysteresis = self.number(data.get("hysteresis", 0), (*at, "hysteresis"), high=MAX_HYSTERESIS)
        levels = data.get("levels", [])
        if not isinstance(levels, list) or not levels:
            self.bad((*at, "levels"), "must be a list of {name, label, from}, lowest first")
            return (), attribute, hysteresis
        tiers: list[Tier] = []
        for i, item in enumerate(levels):
            here = (*at, "levels", i)
            spec = self.section(item, here, ("name", "label", "from"), required=("name", "from"))
            if spec is None:
                continue
            name = self.name(spec.get("name"), (*here, "name"))
            floor = self.number(spec.get("from"), (*here, "from"))
            if tiers and floor <= tiers[-1].floor:
                self.bad((*here, "from"), f"must be above the previous level's ({tiers[-1].floor:g}): lowest first")
            if any(t.name == name for t in tiers):
                self.bad((*here, "name"), f"{name!r} is listed twice")
            tiers.append(Tier(name, self.text(spec.get("label"), (*here, "label"), name), floor))
        if tiers and tiers[0].floor != 0:
            self.bad((*at, "levels", 0, "from"), "the lowest level must start from 0 (every customer has a tier)")
        return tuple(tiers), attribute, hysteresis

    def segments(self, raw: Any) -> tuple[Segment, ...]:
        if raw is None:
            return ()
        if not isinstance(raw, dict):
            self.bad(("segments",), "must be a mapping of name: {label, when}")
            return ()
        out = []
        for name, item in raw.items():
            here = ("segments", name)
            self.name(name, here)
            spec = self.section(item, here, ("label", "when"), required=("when",))
            if spec is None:
                continue
            out.append(Segment(str(name), self.text(spec.get("label"), (*here, "label"), str(name)),
                               self.rule(spec.get("when"), (*here, "when"))))
        return tuple(out)

    def grade(self, raw: Any) -> tuple[tuple[Factor, ...], tuple[Grade, ...]]:
        if raw is None:
            return (), ()
        at: tuple[Any, ...] = ("grade",)
        data = self.section(raw, at, ("factors", "grades"), required=("factors", "grades")) or {}
        factors: list[Factor] = []
        raw_factors = data.get("factors", {})
        if not isinstance(raw_factors, dict) or not raw_factors:
            self.bad((*at, "factors"), "must be a mapping of name: {attribute, weight, cap}")
            raw_factors = {}
        for name, item in raw_factors.items():
            here = (*at, "factors", name)
            spec = self.section(item, here, ("attribute", "weight", "cap"), required=("attribute", "weight", "cap"))
            if spec is None:
                continue
            cap = self.number(spec.get("cap"), (*here, "cap"))
            if cap == 0:
                self.bad((*here, "cap"), "must be above 0 (the value that scores full marks)")
            factors.append(Factor(str(name), self.text(spec.get("attribute"), (*here, "attribute"), str(name)),
                                  self.number(spec.get("weight"), (*here, "weight")), cap or 1.0))
        if factors and sum(f.weight for f in factors) <= 0:
            self.bad((*at, "factors"), "the weights add up to 0")
        grades: list[Grade] = []
        raw_grades = data.get("grades", [])
        if not isinstance(raw_grades, list) or not raw_grades:
            self.bad((*at, "grades"), "must be a list of {name, min}, highest first")
            raw_grades = []
        for i, item in enumerate(raw_grades):
            here = (*at, "grades", i)
            spec = self.section(item, here, ("name", "min"), required=("name", "min"))
            if spec is None:
                continue
            name = spec.get("name")
            if not isinstance(name, str) or not name.strip():
                self.bad((*here, "name"), "must be a non-empty text, e.g. A")
                continue
            floor = self.number(spec.get("min"), (*here, "min"), high=100)
            if grades and floor >= grades[-1].floor:
                self.bad((*here, "min"), f"must be below the previous grade's ({grades[-1].floor:g}): highest first")
            grades.append(Grade(name.strip(), floor))
        if grades and grades[-1].floor != 0:
            self.bad((*at, "grades", len(grades) - 1, "min"), "the last grade must start at 0 (everyone has a grade)")
        return tuple(factors), tuple(grades)

    def rfm(self, raw: Any) -> dict[str, RfmPart]:
        if raw is None:
            return {}
        parts = ("recency", "frequency", "monetary")
        data = self.section(raw, ("rfm",), parts, required=parts) or {}
        out: dict[str, RfmPart] = {}
        for part in parts:
            if part not in data:
                continue
            here = ("rfm", part)
            bound_key = "days" if part == "recency" else "at_least"
            spec = self.section(data[part], here, ("attribute", bound_key), required=("attribute", bound_key))
            if spec is None:
                continue
            bounds = spec.get(bound_key)
            if not isinstance(bounds, list) or len(bounds) != 2:
                self.bad((*here, bound_key), "must be two bounds: [for 3, for 2]")
                continue
            b = (self.number(bounds[0], (*here, bound_key, 0)), self.number(bounds[1], (*here, bound_key, 1)))
            if (part == "recency" and b[0] >= b[1]) or (part != "recency" and b[0] <= b[1]):
                order = "the nearer first, e.g. [30, 90]" if part == "recency" else "the larger first, e.g. [10, 3]"
                self.bad((*here, bound_key), f"bounds out of order: {order}")
            out[part] = RfmPart(self.text(spec.get("attribute"), (*here, "attribute"), part), b)
        return out

    # -- lifecycle.yaml ----------------------------------------------------------------------
    def lifecycle(self) -> tuple[Lifecycle, list[PlaybookIssue]]:
        keys = ("window_days", "trend_days", "hysteresis", "min_stay_days", "stages")
        data = self.section(self.src.data, (), keys, required=("stages",)) or {}
        window = int(self.number(data.get("window_days", 30), ("window_days",), low=1, high=365))
        trend = int(self.number(data.get("trend_days", 30), ("trend_days",), low=1, high=365))
        hysteresis = self.number(data.get("hysteresis", 0), ("hysteresis",), high=MAX_HYSTERESIS)
        stay = int(self.number(data.get("min_stay_days", 0), ("min_stay_days",), high=365))
        raw = data.get("stages", [])
        if not isinstance(raw, list) or not raw:
            self.bad(("stages",), "must be a list of {name, label, when, churn_risk}, first match wins")
            raw = []
        stages: list[Stage] = []
        for i, item in enumerate(raw):
            here = ("stages", i)
            spec = self.section(item, here, ("name", "label", "when", "churn_risk"), required=("name",))
            if spec is None:
                continue
            name = self.name(spec.get("name"), (*here, "name"))
            if any(s.name == name for s in stages):
                self.bad((*here, "name"), f"{name!r} is listed twice")
            last = i == len(raw) - 1
            if "when" not in spec and not last:
                self.bad(here, "needs when: (only the last stage may hold for everyone)")
            if "when" in spec and last:
                self.bad((*here, "when"), "the last stage holds for everyone: drop when: or add a stage after it")
            rule = self.rule(spec["when"], (*here, "when"), SIGNALS) if "when" in spec else Rule()
            risk = spec.get("churn_risk", False)
            if not isinstance(risk, bool):
                self.bad((*here, "churn_risk"), "must be true or false")
                risk = False
            stages.append(Stage(name, self.text(spec.get("label"), (*here, "label"), name), rule, risk))
        return Lifecycle(stages=tuple(stages), window_days=window, trend_days=trend, hysteresis=hysteresis,
                         min_stay_days=stay, source=self.src.display), self.problems
