"""Small value types shared by the playbook models: dates, times, durations, ids, tag names.

Each type parses the human spelling ops admins write (``"09:30"``, ``2h``, ``产品持有/代发``)
and says in one sentence what was expected when it fails; pydantic's generic "string should
match pattern ..." means nothing to the person editing the YAML.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, time, timedelta
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, PlainSerializer, WithJsonSchema


class Strict(BaseModel):
    """Base for every playbook model: unknown keys are errors (typos must not pass silently)."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)


# --- regular expressions -----------------------------------------------------------------


def _compiles(value: str) -> str:
    try:
        re.compile(value)
    except re.error as exc:
        raise ValueError(f"bad regular expression {value!r}: {exc}") from None
    return value


Regex = Annotated[str, AfterValidator(_compiles)]
"""A Python regular expression, checked when the file is loaded (not when it is first used)."""


# --- dates -----------------------------------------------------------------------------


def parse_date(value: object) -> object:
    """Text that only looks like a date (``2026-02-30``: YAML leaves it text) is an error saying why.

    Real YAML dates, and anything else, go on to pydantic's own date parsing.
    """
    if not isinstance(value, str):
        return value
    try:
        return date.fromisoformat(value.strip())
    except ValueError as exc:
        reason = str(exc)
        if reason.startswith("Invalid isoformat"):  # not date-shaped at all: name the form
            reason = "expected YYYY-MM-DD, e.g. 2026-11-02"
        raise ValueError(f"bad date {value!r}: {reason}") from None


Date = Annotated[date, BeforeValidator(parse_date)]


# --- times -----------------------------------------------------------------------------

_HHMM = re.compile(r"([01]?\d|2[0-3]):([0-5]\d)")


def parse_hhmm(value: object) -> time:
    """``"09:30"`` → ``time(9, 30)``; anything else is an error naming the expected form."""
    if isinstance(value, time):
        return value
    if not isinstance(value, str):
        raise ValueError(f'expected a time as "HH:MM" in quotes, e.g. "09:30", got {value!r}')
    m = _HHMM.fullmatch(value.strip())
    if not m:
        raise ValueError(f'bad time {value!r}: expected "HH:MM" between 00:00 and 23:59')
    return time(int(m.group(1)), int(m.group(2)))


def format_hhmm(value: time) -> str:
    return value.strftime("%H:%M")


HHMM = Annotated[
    time,
    BeforeValidator(parse_hhmm),
    PlainSerializer(format_hhmm, return_type=str),
    WithJsonSchema({"type": "string", "pattern": r"^([01]?\d|2[0-3]):[0-5]\d$", "examples": ["09:30"]}),
]


@dataclass(frozen=True)
class QuietHours:
    """A daily window in which nothing is sent; may cross midnight (``21:00-08:30``)."""

    start: time
    end: time

    def contains(self, t: time) -> bool:
        if self.start <= self.end:
            return self.start <= t < self.end
        return t >= self.start or t < self.end

    def __str__(self) -> str:
        return f"{format_hhmm(self.start)}-{format_hhmm(self.end)}"


def _parse_quiet(value: object) -> QuietHours:
    if isinstance(value, QuietHours):
        return value
    if not isinstance(value, str) or value.count("-") != 1:
        raise ValueError(f'expected a window "HH:MM-HH:MM", e.g. "21:00-08:30", got {value!r}')
    start, end = (parse_hhmm(p) for p in value.split("-"))
    if start == end:
        raise ValueError("quiet hours start and end are equal; use e.g. 21:00-08:30")
    return QuietHours(start, end)


QuietWindow = Annotated[
    QuietHours,
    BeforeValidator(_parse_quiet),
    PlainSerializer(str, return_type=str),
    WithJsonSchema({"type": "string", "pattern": r"^\d{1,2}:\d{2}-\d{1,2}:\d{2}$", "examples": ["21:00-08:30"]}),
]

# --- durations ---------------------------------------------------------------------------

_DURATION = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?")


def parse_duration(value: object) -> timedelta:
    """``"2h"``, ``"1d"``, ``"1h30m"`` → timedelta. Bare numbers are refused: minutes or hours?"""
    if isinstance(value, timedelta):
        return value
    m = _DURATION.fullmatch(value.strip()) if isinstance(value, str) else None
    if not m or not any(m.groups()):
        raise ValueError(f"expected a duration like 30m, 2h, 1d or 1h30m, got {value!r}")
    days, hours, minutes = (int(g or 0) for g in m.groups())
    return timedelta(days=days, hours=hours, minutes=minutes)


def format_duration(value: timedelta) -> str:
    minutes = int(value.total_seconds()) // 60
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    out = (f"{days}d" if days else "") + (f"{hours}h" if hours else "") + (f"{mins}m" if mins else "")
    return out or "0m"


Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str),
    WithJsonSchema({"type": "string", "pattern": r"^(\d+d)?(\d+h)?(\d+m)?$", "examples": ["2h", "1d"]}),
]

# --- names and ids ---------------------------------------------------------------------

_IDENT = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")


def _ident(value: str) -> str:
    if not _IDENT.fullmatch(value):
        raise ValueError(f"bad id {value!r}: use 1-64 lower-case letters, digits, '-' or '_' (e.g. payroll-welcome)")
    return value


Ident = Annotated[
    str, AfterValidator(_ident), WithJsonSchema({"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]{0,63}$"})
]

# WeCom returns a contact way's ``state`` in the add-contact event; it allows 30 characters.
STATE_MAX = 30
_STATE = re.compile(r"[A-Za-z0-9_-]+")


def _state(value: str) -> str:
    if len(value) > STATE_MAX:
        raise ValueError(f"channel key is {len(value)} characters; WeCom's state allows at most {STATE_MAX}")
    if not _STATE.fullmatch(value):
        raise ValueError(f"channel key {value!r} may use only letters, digits, '-' and '_' (it is WeCom's state)")
    return value


ChannelKey = Annotated[
    str, AfterValidator(_state), WithJsonSchema({"type": "string", "pattern": "^[A-Za-z0-9_-]{1,30}$"})
]

_USERID = re.compile(r"[A-Za-z0-9_.@-]{1,64}")


def _userid(value: str) -> str:
    if not _USERID.fullmatch(value):
        raise ValueError(f"bad WeCom userid {value!r}: 1-64 letters, digits or _ . @ -")
    return value


UserId = Annotated[str, AfterValidator(_userid)]

# WeCom limits tag and tag-group names to 30 characters.
NAME_MAX = 30


def check_tag_name(value: str, what: str = "tag name") -> str:
    """A single tag or tag-group name: non-empty, no '/', at most 30 characters."""
    if not value or value != value.strip():
        raise ValueError(f"{what} {value!r} is empty or has leading/trailing spaces")
    if "/" in value:
        raise ValueError(f"{what} {value!r} must not contain '/'")
    if len(value) > NAME_MAX:
        raise ValueError(f"{what} {value!r} is longer than {NAME_MAX} characters (WeCom limit)")
    return value


def _tag_ref(value: str) -> str:
    group, sep, tag = value.partition("/")
    if not sep:
        raise ValueError(f'tag {value!r} must be written "group/tag", e.g. "产品持有/代发"')
    check_tag_name(group, "tag group")
    check_tag_name(tag)
    return value


TagRef = Annotated[str, AfterValidator(_tag_ref), WithJsonSchema({"type": "string", "pattern": "^[^/]+/[^/]+$"})]


def _url(value: str) -> str:
    if not re.fullmatch(r"https?://[^\s{}]+", value):
        raise ValueError(f"expected an http(s) URL without spaces or {{placeholders}}, got {value!r}")
    return value


Url = Annotated[str, AfterValidator(_url), WithJsonSchema({"type": "string", "format": "uri"})]

OnHoliday = Literal["next_workday", "skip", "send"]
"""What a scheduled send that falls on a holiday does: move to the next workday, be skipped, or go."""
