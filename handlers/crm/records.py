"""What the CRM sends us, whatever the adapter (file, HTTP): validated records.

Field errors name the field; adapters add the position (``file:line`` or ``customers[3]``).
Anything we would store and then misread or fail on is refused here, at the door: an unknown
event kind, a date that is no date, a non-number amount, NaN or Infinity, JSON nested absurdly
deep, text PostgreSQL cannot store.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

_ID = Field(min_length=1, max_length=128)

# The key events the reminder engine acts on (handlers.sop.reminders.CRM_KINDS), the
# interactions that record contact, and the conversions an SOP step's goal counts (the console's
# SOP effect page): any other kind would be stored and then do nothing, so a typo
# ("large_transfr") is refused instead.
EVENT_KINDS: tuple[str, ...] = ("account.opened", "birthday", "card.activated", "interaction.call",
                                "interaction.visit", "large_transfer", "loan.drawn", "manager_change", "maturity",
                                "payroll.credit", "purchase.fund", "purchase.insurance", "purchase.wealth",
                                "risk_expiry", "tier_down", "tier_up")
# Interactions the bank had with the customer outside WeCom (a call, a branch visit): no card,
# they record contact (handlers.crm.handlers.on_interaction), which the no-contact reminder reads.
INTERACTION_KINDS = frozenset({"interaction.call", "interaction.visit"})
# What a customer did that a campaign or an SOP step aims at (a wealth product bought after the
# payroll+wealth push, a card activated, a loan drawn, a salary credited, an account opened):
# stored and read by goals (``goal: {event: purchase.wealth, within_days: 14}``); no card, no
# reminder. ``payload`` may say what and how much (``product``, ``amount``).
CONVERSION_KINDS = frozenset({"account.opened", "card.activated", "loan.drawn", "payroll.credit", "purchase.fund",
                              "purchase.insurance", "purchase.wealth"})
# Payload fields an event kind cannot do without (a large transfer is judged by its amount).
REQUIRED_FIELDS: dict[str, tuple[str, ...]] = {"large_transfer": ("amount",)}
# Fields read as dates (reminders, path anchors); so is any field named ``*_date``.
DATE_FIELDS = frozenset({"birthday", "maturity_date", "risk_expiry"})
# Fields read as numbers (the large-transfer threshold); a CSV cell brings them as text.
NUMBER_FIELDS = frozenset({"amount"})
# Levels of objects and lists inside one record; real records need four or five.
MAX_DEPTH = 16
_MAX_INT_DIGITS = 309  # as many as the largest float has

_DATE_HINT = "write YYYY-MM-DD, e.g. 2026-12-01"
# Text shaped like an ISO date (optionally with a time) must be a real one, whatever the field:
# "2026-02-30" is a mistake wherever it appears.
_ISO_SHAPE = re.compile(r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?")


def _show(value: Any) -> str:
    """A value quoted in an error line, cut short: the line stays one short line."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _is_real_date(text: str) -> bool:
    if not _ISO_SHAPE.fullmatch(text):
        return False
    try:
        if len(text) == 10:
            date.fromisoformat(text)
        else:
            datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


def _date_problem(key: str, value: Any) -> str | None:
    named = key in DATE_FIELDS or key.endswith("_date")
    if isinstance(value, str) and (named or _ISO_SHAPE.fullmatch(value)):
        return None if _is_real_date(value) else f"{key}: {_show(value)} is not a date; {_DATE_HINT}"
    if named and value is not None:
        return f"{key}: must be a date as text; {_DATE_HINT}"
    return None


def _number_problem(key: str, value: Any) -> str | None:
    if key not in NUMBER_FIELDS or value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return f"{key}: must be a number, e.g. 500000"
    try:
        number = float(value)
    except OverflowError:  # an int beyond any float
        return f"{key}: {_show(value)} is not a finite number"
    except ValueError:
        return f"{key}: {_show(value)} is not a number; write digits, e.g. 500000 or 500000.00"
    return None if math.isfinite(number) else f"{key}: {_show(value)} is not a finite number"


def _check_fields(values: dict[str, Any], *, numbers: bool) -> dict[str, Any]:
    problems = [p for k, v in values.items()
                for p in (_date_problem(k, v), _number_problem(k, v) if numbers else None) if p]
    if problems:
        raise ValueError("; ".join(problems))
    return values


class Record(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class CustomerRecord(Record):
    """One customer's attributes; ``null`` removes an attribute, absent keys are kept."""

    crm_id: str = _ID
    unionid: str | None = Field(None, max_length=128)
    external_userid: str | None = Field(None, max_length=128)
    attributes: dict[str, Any] = Field(default_factory=dict)

    @field_validator("unionid", "external_userid")
    @classmethod
    def _blank_is_none(cls, v: str | None) -> str | None:
        return v or None

    @field_validator("attributes")
    @classmethod
    def _dates(cls, v: dict[str, Any]) -> dict[str, Any]:
        # A birthday or maturity date the reminders cannot read would be skipped without a word.
        return _check_fields(v, numbers=False)


class EventRecord(Record):
    """A key event (large transfer, maturity, tier change, manager change ...)."""

    event_id: str = Field(min_length=1, max_length=256)
    crm_id: str = _ID
    kind: str = Field(min_length=1, max_length=64)
    at: datetime
    payload: dict[str, Any] = Field(default_factory=dict)

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, v: str) -> str:
        if v not in EVENT_KINDS:
            raise ValueError(f"unknown event kind {_show(v)}; use one of {', '.join(EVENT_KINDS)}")
        return v

    @field_validator("at")
    @classmethod
    def _aware(cls, v: datetime) -> datetime:
        if v.tzinfo is None:
            raise ValueError("needs a time zone, e.g. 2026-11-01T09:30:00+08:00")
        return v

    @field_validator("payload")
    @classmethod
    def _fields(cls, v: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        kind = info.data.get("kind")  # absent when the kind itself was refused
        required = REQUIRED_FIELDS.get(kind, ()) if isinstance(kind, str) else ()
        missing = [f for f in required if v.get(f) in (None, "")]
        if missing:
            raise ValueError(f"a {kind} event needs {', '.join(missing)}")
        return _check_fields(v, numbers=True)


class GroupRecord(Record):
    """A customer group's employer and payday (payroll groups: the calendar's "payday")."""

    chat_id: str = _ID
    employer: str = Field("", max_length=128)
    payday: int | None = Field(None, ge=1, le=31, description="day of month; null: the group type's default")


class BindingRecord(Record):
    """The bank says: this CRM customer is this WeCom external contact."""

    crm_id: str = _ID
    external_userid: str = _ID


def explain(exc: ValidationError) -> str:
    """One line: ``field: message; field: message``."""
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "record"
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON (JSON has no NaN or Infinity)")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e400 parses as inf, which no database JSON column takes
        raise ValueError(f"{text[:40]} is too large a number")
    return value


def _integer(text: str) -> int:
    # Past any float's range no amount or count is meant; refusing here also keeps Python's own
    # digit limit (and its advice about sys.set_int_max_str_digits) out of the answer.
    if len(text.lstrip("-")) > _MAX_INT_DIGITS:
        raise ValueError(f"{text[:20]}... is too large a number")
    return int(text)


def loads(data: str | bytes) -> Any:
    """``json.loads`` that refuses NaN, Infinity and numbers too large to be finite.

    Python reads them, but PostgreSQL's JSON columns refuse them (a 500 deep in the insert)
    and SQLite would store what no other JSON reader takes. Nesting deep enough to exhaust the
    parser's recursion is a ``ValueError`` here, not a ``RecursionError``. Malformed JSON
    raises :class:`json.JSONDecodeError` (a ``ValueError``) as usual.
    """
    try:
        return json.loads(data, parse_constant=_no_constant, parse_float=_finite, parse_int=_integer)
    except RecursionError:
        raise ValueError(f"nested deeper than {MAX_DEPTH} levels") from None


def _text_problem(text: str) -> str | None:
    if "\x00" in text:
        return "text contains a NUL character (\\u0000), which the database cannot store"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "text contains a lone UTF-16 surrogate (\\ud800-\\udfff), which is not Unicode"
    return None


def shape_problem(value: Any) -> str | None:
    """Why a parsed JSON record cannot be stored as it is (too deep, unstorable text), or None.

    Iterative: a deep record must not exhaust the recursion of the code checking it.
    """
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            problem = _text_problem(item)
            if problem:
                return problem
        elif isinstance(item, Mapping | list):
            if depth > MAX_DEPTH:
                return f"nested deeper than {MAX_DEPTH} levels"
            children = [*item.keys(), *item.values()] if isinstance(item, Mapping) else item
            stack.extend((child, depth + 1) for child in children)
    return None


def contact_conflicts(key: str, pairs: Sequence[tuple[str, str | None]]) -> list[str]:
    """``key[i]: ...`` for each record giving an external_userid already given to another crm_id.

    ``pairs`` is ``(crm_id, external_userid)`` per record, in batch order. Within one batch
    the binding would depend on the order of the rows: refuse it, the sender decides.
    """
    first: dict[str, tuple[int, str]] = {}
    errors: list[str] = []
    for i, (crm_id, ext) in enumerate(pairs):
        if ext is None:
            continue
        j, owner = first.setdefault(ext, (i, crm_id))
        if owner != crm_id:
            errors.append(f"{key}[{i}]: external_userid {_show(ext)} is also given to crm_id {_show(owner)} "
                          f"in {key}[{j}]; one WeCom contact is one CRM customer")
    return errors
