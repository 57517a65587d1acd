"""Chinese public holidays and make-up workdays (调休), from an ops-editable YAML file.

The State Council publishes next year's schedule each November, so the data must be editable
without a release: it lives in ``sop/holidays.yaml`` beside the rest of the playbook. (The
``chinese_calendar`` package on PyPI was checked: version 1.11.0 stops at 2026, and a package
upgrade is a release; the YAML file is the single source.)

A year is ``official`` (copied from the published notice) or ``provisional`` (statutory days
only, before the notice). Years the file does not cover fall back to Monday-Friday, and the
loader warns about them so that nobody discovers it on a make-up Saturday.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, ValidationError

from .fields import Date, Strict
from .issues import PlaybookIssue
from .validate import validation_issues
from .yamlsrc import SourceFile

YearStatus = Literal["official", "provisional"]

# A weekend without a single workday for this long means broken data, not a holiday.
_MAX_SCAN_DAYS = 60


def _date_or_range(value: object) -> object:
    return value if isinstance(value, list) else [value]


# json_schema_input_type: editors must accept the single date the loader accepts (元旦: 2027-01-01).
DateRange = Annotated[list[Date], BeforeValidator(_date_or_range, json_schema_input_type=date | list[date]),
                      Field(min_length=1, max_length=2)]


class HolidayYearSpec(Strict):
    """One year as written in holidays.yaml."""

    status: YearStatus
    source: str | None = None
    off: dict[str, DateRange] = Field(default_factory=dict)
    work: list[Date] = Field(default_factory=list)


class HolidaysFile(Strict):
    """``sop/holidays.yaml``: ``years: {2026: {status, source, off: {name: [from, to]}, work: [...]}}``."""

    years: dict[int, HolidayYearSpec]


@dataclass(frozen=True)
class HolidayYear:
    year: int
    status: YearStatus
    off: Mapping[date, str]
    work: frozenset[date]
    source: str | None = None


@dataclass
class WorkCalendar:
    """Workday arithmetic over the holiday data (Monday-Friday where no data exists)."""

    years: Mapping[int, HolidayYear] = field(default_factory=dict)
    off: dict[date, str] = field(init=False, default_factory=dict)
    work: set[date] = field(init=False, default_factory=set)

    def __post_init__(self) -> None:
        for y in self.years.values():
            self.off.update(y.off)
            self.work.update(y.work)

    def coverage(self, year: int) -> YearStatus | None:
        """``official``, ``provisional`` or ``None`` when the file has no data for ``year``."""
        y = self.years.get(year)
        return y.status if y else None

    def holiday_name(self, day: date) -> str | None:
        """Name of the public holiday on ``day`` (``"国庆节"``), if any."""
        return self.off.get(day)

    def is_workday(self, day: date) -> bool:
        """True on ordinary weekdays and make-up workdays; false on weekends and holidays."""
        if day in self.work:
            return True
        if day in self.off:
            return False
        return day.weekday() < 5

    def add_workdays(self, day: date, n: int) -> date:
        """Move ``n`` workdays from ``day``; ``n == 0`` rolls a non-workday forward.

        ``add_workdays(payday, 1)`` is the first workday *after* payday, whatever payday is;
        negative ``n`` counts backwards the same way.
        """
        step = 1 if n >= 0 else -1
        remaining = abs(n)
        current = day
        if remaining == 0:
            return self.next_workday(day)
        scanned = 0
        while remaining:
            current += timedelta(days=step)
            scanned += 1
            if self.is_workday(current):
                remaining -= 1
                scanned = 0
            elif scanned > _MAX_SCAN_DAYS:  # pragma: no cover - only with absurd data
                raise ValueError(f"no workday within {_MAX_SCAN_DAYS} days of {current}")
        return current

    def next_workday(self, day: date) -> date:
        """``day`` itself if it is a workday, else the first workday after it."""
        current = day
        for _ in range(_MAX_SCAN_DAYS):
            if self.is_workday(current):
                return current
            current += timedelta(days=1)
        raise ValueError(f"no workday within {_MAX_SCAN_DAYS} days of {day}")  # pragma: no cover


def load_holidays(source: SourceFile, today: date) -> tuple[WorkCalendar, list[PlaybookIssue]]:
    """Validate holidays.yaml; returns a calendar (empty on errors) and errors + warnings."""
    try:
        spec = HolidaysFile.model_validate(source.data)
    except ValidationError as exc:
        return WorkCalendar(), validation_issues(source, exc, model=HolidaysFile)
    issues: list[PlaybookIssue] = []
    years: dict[int, HolidayYear] = {}
    for year, ys in spec.years.items():
        base = ("years", str(year))
        off: dict[date, str] = {}
        for name, span in ys.off.items():
            where = (*base, "off", name)
            first, last = span[0], span[-1]
            if last < first:
                issues.append(source.issue(where, f"range ends ({last}) before it starts ({first})"))
                continue
            if (last - first).days > 14:
                issues.append(source.issue(where, f"{name} spans {(last - first).days + 1} days; is a date wrong?"))
                continue
            if abs(first.year - year) > 1 or (first.year != year and last.year != year):
                issues.append(source.issue(where, f"{first} is not in {year}"))
                continue
            d = first
            while d <= last:
                off[d] = name
                d += timedelta(days=1)
        for i, day in enumerate(ys.work):
            if day.weekday() < 5:
                issues.append(
                    source.issue((*base, "work", i), f"{day} is a weekday; make-up workdays are weekend days")
                )
            elif day in off:
                issues.append(source.issue((*base, "work", i), f"{day} is also listed as a holiday ({off[day]})"))
        years[year] = HolidayYear(year, ys.status, off, frozenset(ys.work), ys.source)
    for year in _years_that_matter(today):
        status = years[year].status if year in years else None
        if status != "official":
            what = "has no data" if status is None else "is provisional (statutory days only, no 调休)"
            issues.append(
                source.issue(
                    ("years", str(year)) if status else ("years",),
                    f"{year} {what}; enter the State Council schedule when it is published",
                    severity="warning",
                )
            )
    return WorkCalendar(years), issues


def _years_that_matter(today: date) -> list[int]:
    # Next year's schedule appears in November; warn from then on, not all year round.
    return [today.year, today.year + 1] if today.month >= 11 else [today.year]
