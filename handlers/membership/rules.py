"""``sop/membership.yaml``, the file ops admins own: which behaviours earn what (with daily and
monthly caps), when points expire, the levels (growth thresholds, what keeps a level at the
review, the rights of each) and how often the review runs.

Read with the playbook's YAML reader (YAML 1.2, every key's line), so every problem is one
``file:line: key.path: message``. A missing file means nobody earns anything. Pure.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from scrm.playbook.issues import PlaybookError, PlaybookIssue
from scrm.playbook.rulefile import RuleReader, problems, reloading
from scrm.playbook.yamlsrc import SourceFile, read_yaml

MEMBERSHIP_FILE = "membership.yaml"
NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
#: Where a behaviour comes from besides ``crm.<CRM event kind>``: a customer opening a material,
#: joining a customer group, checking in or answering a quiz through their membership link.
SOURCES = ("radar.open", "group.join", "checkin", "quiz")
REVIEW_PERIODS = {"month": 1, "quarter": 3, "half_year": 6, "year": 12}


@dataclass(frozen=True)
class Behaviour:
    """What one kind of behaviour earns, at most ``daily_cap`` times a day and ``monthly_cap``
    times a calendar month (local time; 0: no cap)."""

    name: str
    label: str
    on: str  # crm.<kind> | radar.open | group.join | checkin | quiz
    points: int
    growth: int
    daily_cap: int = 0
    monthly_cap: int = 0


@dataclass(frozen=True)
class Expiry:
    """Points earned on a local day lapse ``after_days`` later, or at the end of the year
    ``year_end_after`` years after the year earned (1: end of the following year)."""

    after_days: int | None = None
    year_end_after: int | None = None

    def expires_at(self, at: datetime, tz: ZoneInfo) -> datetime | None:
        """When points earned at ``at`` lapse (UTC); None: never."""
        if self.after_days is not None:
            return (at + timedelta(days=self.after_days)).astimezone(UTC)
        if self.year_end_after is not None:
            year = at.astimezone(tz).year + self.year_end_after + 1
            return datetime.combine(date(year, 1, 1), time(0), tz).astimezone(UTC)
        return None


@dataclass(frozen=True)
class Level:
    name: str
    label: str
    growth: int  # the growth earned over the window that reaches this level
    keep: int  # what it takes at the review to stay (≤ growth)
    general: tuple[str, ...] = ()  # general rights (通用权益)
    privileges: tuple[str, ...] = ()  # privileges of the level (专属特权)


@dataclass(frozen=True)
class Quiz:
    """One question a customer answers through their quiz link; the right answer earns the
    ``on: quiz`` behaviour once per quiz."""

    name: str
    question: str
    choices: tuple[str, ...]
    answer: str  # one of choices


@dataclass(frozen=True)
class Membership:
    behaviours: tuple[Behaviour, ...] = ()
    expiry: Expiry = field(default_factory=Expiry)
    levels: tuple[Level, ...] = (Level("member", "会员", 0, 0),)  # lowest first
    window_days: int = 365  # the growth a level is judged on: earned in the last N days
    review_months: int = 3
    max_steps: int = 1  # levels a review may take away at once
    quizzes: tuple[Quiz, ...] = ()
    source: str = "(no membership.yaml)"

    def quiz(self, name: str) -> Quiz | None:
        return next((q for q in self.quizzes if q.name == name), None)

    def behaviour_on(self, on: str) -> Behaviour | None:
        return next((b for b in self.behaviours if b.on == on), None)

    def behaviour(self, name: str) -> Behaviour | None:
        return next((b for b in self.behaviours if b.name == name), None)

    def level(self, name: str) -> Level | None:
        return next((lv for lv in self.levels if lv.name == name), None)

    def rank(self, name: str) -> int:
        """A level's place, 0 the lowest; an unknown (renamed) level counts as the lowest."""
        return next((i for i, lv in enumerate(self.levels) if lv.name == name), 0)

    def reached(self, growth: int) -> int:
        """The highest level whose threshold ``growth`` meets."""
        return max(i for i, lv in enumerate(self.levels) if growth >= lv.growth)

    def review_day(self, day: date) -> date:
        """The latest review day on or before ``day``: the first day of each period, counted
        from January."""
        year, month = day.year, day.month - (day.month - 1) % self.review_months
        return date(year, month, 1)


def load_membership(sop_dir: Path, crm_kinds: Collection[str]) -> Membership:
    """``sop_dir/membership.yaml`` (nothing earns when absent); raises :class:`PlaybookError`
    listing every problem. ``crm_kinds``: the CRM event kinds a behaviour may be ``on``."""
    path = sop_dir / MEMBERSHIP_FILE
    if not path.exists():
        return Membership()
    src, issues = read_yaml(path, f"{sop_dir.name}/{MEMBERSHIP_FILE}")
    if src is None or issues:
        raise PlaybookError(issues)
    reader = _Reader(src, crm_kinds)
    result = reader.membership()
    if reader.problems:
        raise PlaybookError(reader.problems)
    return result


# :func:`load_membership`, read again only when the file changed (handlers read it per event).
load_current = reloading(load_membership, MEMBERSHIP_FILE)


def check(sop_dir: Path, crm_kinds: Collection[str]) -> list[PlaybookIssue]:
    """Every problem of the file (``scrm membership check``, ``scrm sop validate``)."""
    return problems(lambda: load_membership(sop_dir, crm_kinds))


class _Reader(RuleReader):
    """Walks the file, collecting every problem instead of stopping at the first."""

    def __init__(self, src: SourceFile, crm_kinds: Collection[str]) -> None:
        super().__init__(src)
        self.crm_kinds = frozenset(crm_kinds)

    def text(self, value: Any, at: tuple[Any, ...], default: str) -> str:
        if value is None:
            return default
        if not isinstance(value, str) or not value.strip():
            self.bad(at, "must be a non-empty text")
            return default
        return value.strip()

    def texts(self, value: Any, at: tuple[Any, ...]) -> tuple[str, ...]:
        if value is None:
            return ()
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            self.bad(at, "must be a list of texts")
            return ()
        return tuple(v.strip() for v in value)

    def membership(self) -> Membership:
        data = self.mapping(self.src.data, (), ("behaviours", "points", "levels", "review", "quizzes"),
                            required=("behaviours", "levels"))
        behaviours = self.behaviours(data.get("behaviours"))
        expiry = self.expiry(data.get("points"))
        levels, window = self.levels(data.get("levels"))
        months, steps = self.review(data.get("review"), len(levels))
        quizzes = self.quizzes(data.get("quizzes"))
        return Membership(behaviours=behaviours, expiry=expiry, levels=levels or Membership().levels,
                          window_days=window, review_months=months, max_steps=steps, quizzes=quizzes,
                          source=self.src.display)

    def quizzes(self, raw: Any) -> tuple[Quiz, ...]:
        if raw is None:
            return ()
        if not isinstance(raw, dict):
            self.bad(("quizzes",), "must be a mapping of name: {question, choices, answer}")
            return ()
        out: list[Quiz] = []
        for name, item in raw.items():
            here: tuple[Any, ...] = ("quizzes", name)
            if not isinstance(name, str) or not NAME.match(name):
                self.bad(here, f"must be a lower-case name (a-z, 0-9, _), got {name!r}")
            spec = self.mapping(item, here, ("question", "choices", "answer"),
                                required=("question", "choices", "answer"))
            if not spec:
                continue
            question = self.text(spec.get("question"), (*here, "question"), "")
            choices = self.texts(spec.get("choices"), (*here, "choices"))
            if "choices" in spec and len(choices) < 2:
                self.bad((*here, "choices"), "must list at least two choices")
            answer = self.text(spec.get("answer"), (*here, "answer"), "")
            if "answer" in spec and choices and answer not in choices:
                self.bad((*here, "answer"), f"must be one of the choices, got {answer!r}")
            out.append(Quiz(str(name), question, choices, answer))
        return tuple(out)

    def behaviours(self, raw: Any) -> tuple[Behaviour, ...]:
        if raw is None:
            return ()
        if not isinstance(raw, dict) or not raw:
            self.bad(("behaviours",), "must be a mapping of name: {label, on, points, growth, daily_cap, monthly_cap}")
            return ()
        out: list[Behaviour] = []
        for name, item in raw.items():
            here: tuple[Any, ...] = ("behaviours", name)
            if not isinstance(name, str) or not NAME.match(name):
                self.bad(here, f"must be a lower-case name (a-z, 0-9, _), got {name!r}")
            spec = self.mapping(item, here, ("label", "on", "points", "growth", "daily_cap", "monthly_cap"),
                                required=("on",))
            if not spec:
                continue
            on = spec.get("on")
            known = (isinstance(on, str) and (on in SOURCES or (on.startswith("crm.") and on[4:] in self.crm_kinds)))
            if "on" in spec and not known:
                kinds = ", ".join(f"crm.{k}" for k in sorted(self.crm_kinds))
                self.bad((*here, "on"), f"unknown behaviour source {on!r}; expected {', '.join(SOURCES)} or one of "
                                        f"{kinds}")
            if known and any(b.on == on for b in out):
                self.bad((*here, "on"), f"{on!r} already earns under another behaviour (one event, one behaviour)")
            points = self.whole(spec.get("points", 0), (*here, "points"))
            growth = self.whole(spec.get("growth", 0), (*here, "growth"))
            if points == 0 and growth == 0:
                self.bad(here, "earns nothing: give points: or growth: above 0")
            daily = self.whole(spec.get("daily_cap", 0), (*here, "daily_cap"), high=1000)
            monthly = self.whole(spec.get("monthly_cap", 0), (*here, "monthly_cap"), high=31_000)
            if daily and monthly and monthly < daily:
                self.bad((*here, "monthly_cap"), f"is below daily_cap ({daily}): the daily cap could never be reached")
            out.append(Behaviour(str(name), self.text(spec.get("label"), (*here, "label"), str(name)),
                                 str(on), points, growth, daily, monthly))
        return tuple(out)

    def expiry(self, raw: Any) -> Expiry:
        if raw is None:
            return Expiry()
        data = self.mapping(raw, ("points",), ("expire",))
        spec = data.get("expire")
        if spec is None:
            return Expiry()
        at: tuple[Any, ...] = ("points", "expire")
        rule = self.mapping(spec, at, ("after_days", "year_end_after"))
        if len(rule) != 1:
            self.bad(at, "give exactly one of after_days: N or year_end_after: N (1 = end of the following year)")
            return Expiry()
        if "after_days" in rule:
            return Expiry(after_days=self.whole(rule["after_days"], (*at, "after_days"), low=1, high=3660))
        if "year_end_after" in rule:
            return Expiry(year_end_after=self.whole(rule["year_end_after"], (*at, "year_end_after"), high=10))
        return Expiry()

    def levels(self, raw: Any) -> tuple[tuple[Level, ...], int]:
        at: tuple[Any, ...] = ("levels",)
        data = self.mapping(raw, at, ("window_days", "list"), required=("list",))
        window = self.whole(data.get("window_days", 365), (*at, "window_days"), low=1, high=3660)
        items = data.get("list", [])
        if not isinstance(items, list) or not items:
            self.bad((*at, "list"), "must be a list of {name, label, growth, keep, rights}, lowest first")
            return (), window
        out: list[Level] = []
        for i, item in enumerate(items):
            here = (*at, "list", i)
            spec = self.mapping(item, here, ("name", "label", "growth", "keep", "rights"), required=("name", "growth"))
            if not spec:
                continue
            name = spec.get("name")
            if not isinstance(name, str) or not NAME.match(name):
                self.bad((*here, "name"), f"must be a lower-case name (a-z, 0-9, _), got {name!r}")
                name = ""
            elif any(lv.name == name for lv in out):
                self.bad((*here, "name"), f"{name!r} is listed twice")
            growth = self.whole(spec.get("growth"), (*here, "growth"))
            if out and growth <= out[-1].growth:
                self.bad((*here, "growth"), f"must be above the previous level's ({out[-1].growth}): lowest first")
            if not out and growth != 0:
                self.bad((*here, "growth"), "the lowest level must start from 0 (every member has a level)")
            keep = self.whole(spec.get("keep", growth), (*here, "keep"))
            if keep > growth:
                # Above the threshold, a customer kept down would climb straight back at the next earn.
                self.bad((*here, "keep"), f"must not be above growth ({growth})")
            rights = self.mapping(spec.get("rights", {}), (*here, "rights"), ("general", "privileges"))
            out.append(Level(str(name), self.text(spec.get("label"), (*here, "label"), str(name)), growth, keep,
                             self.texts(rights.get("general"), (*here, "rights", "general")),
                             self.texts(rights.get("privileges"), (*here, "rights", "privileges"))))
        return tuple(out), window

    def review(self, raw: Any, levels: int) -> tuple[int, int]:
        if raw is None:
            return 3, 1
        data = self.mapping(raw, ("review",), ("every", "max_steps"))
        every = data.get("every", "quarter")
        if every not in REVIEW_PERIODS:
            self.bad(("review", "every"), f"must be one of {', '.join(REVIEW_PERIODS)}, got {every!r}")
            every = "quarter"
        steps = self.whole(data.get("max_steps", 1), ("review", "max_steps"), low=1, high=max(1, levels))
        return REVIEW_PERIODS[every], steps
