"""The two tiny declarative languages in the playbook: date expressions and conditions.

Both are parsed once at load time into small immutable trees and never evaluated as code.

Date expressions say *which day* a step runs::

    day 15                  the 15th (the last day in shorter months)
    last day | first workday | last workday
    payday + 1 workday      an anchor (a date the CRM knows) moved by days or workdays
    maturity_date - 7 days

Conditions choose a branch or narrow an audience::

    crm.payday < crm.repayment_day
    crm.aum >= 50万 and not has '风险评估/未评估'
    crm.tier == 'V3' or (crm.age >= 60 and crm.card_spend_month > 3000)

Comparisons need a known ``crm.*`` field on at least one side and matching types; ``<``/``>``
only on numbers. ``万`` after a number multiplies it by 10,000, as bankers write amounts.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal, Protocol


class ExprError(ValueError):
    """An expression that does not parse or does not type-check."""


class EvaluationError(Exception):
    """An expression could not be evaluated for one customer (missing or bad data)."""


class MissingValue(EvaluationError):
    """A field or anchor the expression needs is unknown for this customer or group."""

    def __init__(self, name: str) -> None:
        super().__init__(f"{name} is not known")
        self.name = name


class Workdays(Protocol):
    """What date expressions need from :class:`scrm.playbook.holidays.WorkCalendar`."""

    def is_workday(self, day: date) -> bool: ...

    def add_workdays(self, day: date, n: int) -> date: ...


# --- anchors ------------------------------------------------------------------------------

AnchorRepeat = Literal["monthly", "yearly", "once"]

ANCHORS: dict[str, tuple[AnchorRepeat, str]] = {
    "payday": ("monthly", "发薪日: salary day of month (CRM, or the group type's default)"),
    "repayment_day": ("monthly", "还款日: loan repayment day of month"),
    "birthday": ("yearly", "生日"),
    "added_at": ("once", "the day the customer added the manager on WeCom"),
    "maturity_date": ("once", "到期日 of the customer's product"),
    "risk_expiry": ("once", "风险评估 expiry date"),
    "stage_entered": ("once", "the day the customer entered their lifecycle stage (sop/lifecycle.yaml)"),
}
"""Dates a customer (or a payroll group) carries; monthly ones are a day of the month."""

MONTH_BASES = ("day", "last_day", "first_workday", "last_workday")

_DATE = re.compile(
    r"\s*(?:day\s+(?P<day>\d{1,2})|(?P<named>last\s+day|first\s+workday|last\s+workday)|(?P<anchor>[a-z_]+))"
    r"\s*(?:(?P<sign>[+-])\s*(?P<n>\d{1,3})\s*(?P<unit>days?|workdays?))?\s*"
)
_DATE_HINT = 'e.g. "day 15", "last workday", "payday + 1 workday", "maturity_date - 7 days"'


@dataclass(frozen=True)
class DateExpr:
    """A parsed date expression; ``base`` is a month base or an anchor name."""

    text: str
    base: str
    day: int | None = None
    offset: int = 0
    workdays: bool = False

    @property
    def anchor(self) -> str | None:
        """The anchor this expression hangs on, or ``None`` for day-of-month forms."""
        return None if self.base in MONTH_BASES else self.base

    def resolve(self, month: date, anchors: Mapping[str, date], calendar: Workdays) -> date:
        """The concrete day: ``month`` is any day of the month in question (ignored by anchors)."""
        first = month.replace(day=1)
        last = (first + timedelta(days=32)).replace(day=1) - timedelta(days=1)
        if self.base == "day":
            assert self.day is not None
            start = first.replace(day=min(self.day, last.day))
        elif self.base == "last_day":
            start = last
        elif self.base == "first_workday":
            start = calendar.add_workdays(first, 0)
        elif self.base == "last_workday":
            start = last
            while not calendar.is_workday(start):
                start -= timedelta(days=1)
        elif self.base in anchors:
            start = anchors[self.base]
        else:
            raise MissingValue(self.base)
        if self.workdays:
            return calendar.add_workdays(start, self.offset)
        return start + timedelta(days=self.offset)

    def __str__(self) -> str:
        return self.text


def parse_date_expr(text: str) -> DateExpr:
    """Parse a date expression or raise :class:`ExprError` saying what was expected."""
    if not isinstance(text, str):
        raise ExprError(f"expected a date expression ({_DATE_HINT}), got {text!r}")
    m = _DATE.fullmatch(text)
    if not m:
        raise ExprError(f"cannot read {text!r} as a date: {_DATE_HINT}")
    n = int(m.group("n") or 0)
    offset = -n if m.group("sign") == "-" else n
    workdays = (m.group("unit") or "").startswith("workday")
    if m.group("day"):
        day = int(m.group("day"))
        if not 1 <= day <= 31:
            raise ExprError(f"day {day} is not a day of the month (1-31)")
        return DateExpr(text, "day", day, offset, workdays)
    if m.group("named"):
        return DateExpr(text, "_".join(m.group("named").split()), None, offset, workdays)
    anchor = m.group("anchor")
    if anchor not in ANCHORS:
        known = ", ".join(ANCHORS)
        raise ExprError(f"unknown date {anchor!r}: use day N, last day, first/last workday or one of {known}")
    return DateExpr(text, anchor, None, offset, workdays)


WEEKDAYS = {"mon": 0, "tue": 1, "wed": 2, "thu": 3, "fri": 4, "sat": 5, "sun": 6}
_CN_WEEKDAYS = {"周一": 0, "周二": 1, "周三": 2, "周四": 3, "周五": 4, "周六": 5, "周日": 6}


def parse_weekdays(text: str) -> tuple[int, ...]:
    """``"mon, thu"`` or ``"周三"`` → weekday numbers (Monday = 0)."""
    out: list[int] = []
    for part in re.split(r"[,，\s]+", text.strip().lower()):
        if not part:
            continue
        day = WEEKDAYS.get(part[:3], _CN_WEEKDAYS.get(part))
        if day is None:
            raise ExprError(f'unknown weekday {part!r}: use mon..sun or 周一..周日, e.g. "wed"')
        out.append(day)
    if not out:
        raise ExprError('expected weekdays, e.g. "wed" or "mon, thu"')
    return tuple(sorted(set(out)))


# --- conditions ---------------------------------------------------------------------------

FieldType = Literal["number", "string"]

CRM_FIELDS: dict[str, FieldType] = {
    "crm.payday": "number",
    "crm.repayment_day": "number",
    "crm.aum": "number",
    "crm.age": "number",
    "crm.card_spend_month": "number",
    "crm.card_installments": "number",
    "crm.tier": "string",
    "crm.risk_level": "string",
    "crm.city": "string",
}
"""CRM attributes conditions may read, with their types (checked at load time)."""

_TOKEN = re.compile(
    r"\s*(?:(?P<num>\d+(?:\.\d+)?)(?P<wan>万)?|(?P<str>'[^']*'|\"[^\"]*\")|(?P<op><=|>=|==|!=|<|>)"
    r"|(?P<paren>[()])|(?P<word>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*))"
)
_MAX_LEN = 500
_MAX_DEPTH = 20


@dataclass(frozen=True)
class Var:
    name: str


@dataclass(frozen=True)
class Const:
    value: float | str


Operand = Var | Const


@dataclass(frozen=True)
class Compare:
    left: Operand
    op: str
    right: Operand


@dataclass(frozen=True)
class HasTag:
    tag: str


@dataclass(frozen=True)
class Not:
    item: Node


@dataclass(frozen=True)
class BoolOp:
    op: Literal["and", "or"]
    items: tuple[Node, ...]


Node = Compare | HasTag | Not | BoolOp

_OPS = {
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
}


@dataclass(frozen=True)
class Condition:
    """A parsed, type-checked condition."""

    text: str
    root: Node

    @property
    def tags(self) -> frozenset[str]:
        """Tags named by ``has`` (checked against tags.yaml by the loader)."""
        return frozenset(_walk_tags(self.root))

    def evaluate(self, values: Mapping[str, object], tags: Collection[str]) -> bool:
        """Evaluate for one customer; raises :class:`MissingValue` rather than guessing."""
        return _eval(self.root, values, tags)

    def __str__(self) -> str:
        return self.text


def _walk_tags(node: Node) -> list[str]:
    if isinstance(node, HasTag):
        return [node.tag]
    if isinstance(node, Not):
        return _walk_tags(node.item)
    if isinstance(node, BoolOp):
        return [t for item in node.items for t in _walk_tags(item)]
    return []


def _value(operand: Operand, values: Mapping[str, object]) -> float | str:
    if isinstance(operand, Const):
        return operand.value
    raw = values.get(operand.name)
    if raw is None or raw == "":
        raise MissingValue(operand.name)
    if CRM_FIELDS[operand.name] == "string":
        return str(raw)
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        raise EvaluationError(f"{operand.name} is {raw!r}, not a number")
    try:
        return float(raw)
    except ValueError:
        raise EvaluationError(f"{operand.name} is {raw!r}, not a number") from None


def _eval(node: Node, values: Mapping[str, object], tags: Collection[str]) -> bool:
    if isinstance(node, HasTag):
        return node.tag in tags
    if isinstance(node, Not):
        return not _eval(node.item, values, tags)
    if isinstance(node, BoolOp):
        if node.op == "and":
            return all(_eval(i, values, tags) for i in node.items)
        return any(_eval(i, values, tags) for i in node.items)
    left, right = _value(node.left, values), _value(node.right, values)
    return bool(_OPS[node.op](left, right))


class _Parser:
    """Recursive descent: or → and → not → primary. Small enough to read in one go."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens: list[tuple[str, str, int]] = []
        pos = 0
        while pos < len(text):
            if text[pos:].strip() == "":
                break
            m = _TOKEN.match(text, pos)
            if not m:
                bad = text[pos:].strip()[:12]
                raise ExprError(f"unexpected {bad!r} at column {pos + 1}")
            kind = next(k for k in ("num", "str", "op", "paren", "word") if m.group(k) is not None)
            value = m.group(kind)
            if m.group("wan"):  # 50万 = 500000
                value = str(float(value) * 10_000)
            self.tokens.append((kind, value, m.start(kind)))
            pos = m.end()
        self.i = 0
        self.depth = 0

    def peek(self) -> tuple[str, str, int] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self) -> tuple[str, str, int]:
        tok = self.peek()
        if tok is None:
            raise ExprError(f"{self.text!r} ends too early")
        self.i += 1
        return tok

    def is_word(self, word: str) -> bool:
        tok = self.peek()
        return tok is not None and tok[0] == "word" and tok[1] == word

    def parse(self) -> Node:
        node = self.or_()
        tok = self.peek()
        if tok is not None:
            raise ExprError(f"unexpected {tok[1]!r} at column {tok[2] + 1}; join conditions with and/or")
        return node

    def or_(self) -> Node:
        items = [self.and_()]
        while self.is_word("or"):
            self.take()
            items.append(self.and_())
        return items[0] if len(items) == 1 else BoolOp("or", tuple(items))

    def and_(self) -> Node:
        items = [self.not_()]
        while self.is_word("and"):
            self.take()
            items.append(self.not_())
        return items[0] if len(items) == 1 else BoolOp("and", tuple(items))

    def not_(self) -> Node:
        if self.is_word("not"):
            self.take()
            return Not(self.not_())
        return self.primary()

    def primary(self) -> Node:
        tok = self.peek()
        if tok is not None and tok[0] == "paren" and tok[1] == "(":
            self.take()
            self.depth += 1
            if self.depth > _MAX_DEPTH:
                raise ExprError("too many nested parentheses")
            node = self.or_()
            close = self.take()
            if close[1] != ")":
                raise ExprError(f"expected ')' at column {close[2] + 1}")
            self.depth -= 1
            return node
        if self.is_word("has"):
            self.take()
            kind, value, col = self.take()
            if kind != "str" or "/" not in value:
                raise ExprError(f"'has' needs a quoted tag like 'group/tag' at column {col + 1}")
            return HasTag(value[1:-1])
        left = self.operand()
        kind, op, col = self.take()
        if kind != "op":
            raise ExprError(f"expected a comparison (<, <=, >, >=, ==, !=) at column {col + 1}, got {op!r}")
        return self.check(Compare(left, op, self.operand()))

    def operand(self) -> Operand:
        kind, value, col = self.take()
        if kind == "num":
            return Const(float(value))
        if kind == "str":
            return Const(value[1:-1])
        if kind == "word" and value in CRM_FIELDS:
            return Var(value)
        if kind == "word" and value.startswith("crm."):
            raise ExprError(f"unknown field {value!r} (known: {', '.join(CRM_FIELDS)})")
        raise ExprError(f"expected a crm.* field, a number or a 'quoted' text at column {col + 1}, got {value!r}")

    def check(self, node: Compare) -> Compare:
        types = [_type_of(node.left), _type_of(node.right)]
        if not isinstance(node.left, Var) and not isinstance(node.right, Var):
            raise ExprError(f"{self.text!r} compares two constants")
        if types[0] != types[1]:
            raise ExprError(f"cannot compare a {types[0]} with a {types[1]} in {self.text!r}")
        if types[0] == "string" and node.op not in ("==", "!="):
            raise ExprError(f"text can only be compared with == or != in {self.text!r}")
        return node


def _type_of(operand: Operand) -> FieldType:
    if isinstance(operand, Var):
        return CRM_FIELDS[operand.name]
    return "string" if isinstance(operand.value, str) else "number"


def parse_condition(text: str) -> Condition:
    """Parse and type-check a condition or raise :class:`ExprError`."""
    if not isinstance(text, str) or not text.strip():
        raise ExprError('expected a condition, e.g. "crm.payday < crm.repayment_day"')
    if len(text) > _MAX_LEN:
        raise ExprError(f"condition is longer than {_MAX_LEN} characters")
    return Condition(text, _Parser(text).parse())
