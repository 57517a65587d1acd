"""The one small rule form both YAML files use: ``{field: {op: value, ...}, ...}``, all must hold.

::

    when: {age: {min: 60}, products: {has: payroll}, customer_type: {in: [merchant, sme]}}

Operators: ``min`` (≥), ``max`` (≤), ``eq``, ``in`` (one of), ``has`` (a list attribute holds
it). A field the customer has no value for fails its test: unknown data never qualifies anyone.
Numbers may be written as bankers do (``50万``); multi-valued attributes are read as the CRM's
tag map reads them. Pure; no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from handlers.crm.api import attribute_values as values_of

OPS = ("min", "max", "eq", "in", "has")


def amount(value: Any) -> float | None:
    """A number from YAML or CRM data: ``12``, ``"3.5"``, ``"50万"``, ``"1,000"``; else None."""
    kind = type(value)
    if kind is int or kind is float:  # the usual case first: called a dozen times per customer
        return float(value)
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        text = value.strip().replace(",", "")
        scale = 1.0
        if text.endswith("万"):
            text, scale = text[:-1], 10_000.0
        try:
            return float(text) * scale
        except ValueError:
            return None
    return None


def _same(raw: Any, want: Any) -> bool:
    if isinstance(want, bool) or isinstance(raw, bool):
        return values_of(raw) == values_of(want)
    a, b = amount(raw), amount(want)
    if a is not None and b is not None and not isinstance(want, str):
        return a == b
    return str(raw).strip() == str(want).strip()


@dataclass(frozen=True)
class Test:
    """One field's tests (``min``/``max`` numbers; ``eq``/``in``/``has`` texts or numbers)."""

    field: str
    min: float | None = None
    max: float | None = None
    eq: Any = None
    one_of: tuple[Any, ...] = ()
    has: str | None = None

    def holds(self, raw: Any, *, slack: float = 0.0) -> bool:
        """Whether ``raw`` passes; ``slack`` widens ``min``/``max`` by that fraction of their
        size (hysteresis: a customer already in a stage stays until clearly out of it)."""
        if raw is None or raw == "":
            return False
        if self.min is not None or self.max is not None:
            number = amount(raw)
            if number is None:
                return False
            if self.min is not None and number < self.min - abs(self.min) * slack:
                return False
            if self.max is not None and number > self.max + abs(self.max) * slack:
                return False
        if self.eq is not None and not _same(raw, self.eq):
            return False
        if self.one_of and not any(_same(raw, v) for v in self.one_of):
            return False
        return self.has is None or self.has in values_of(raw)


@dataclass(frozen=True)
class Rule:
    """Tests that must all hold (an empty rule holds for everyone)."""

    tests: tuple[Test, ...] = ()

    def holds(self, values: Mapping[str, Any], *, slack: float = 0.0) -> bool:
        return all(t.holds(values.get(t.field), slack=slack) for t in self.tests)

    @property
    def fields(self) -> frozenset[str]:
        return frozenset(t.field for t in self.tests)


def parse_rule(raw: Any) -> tuple[Rule | None, list[tuple[tuple[Any, ...], str]]]:
    """A rule from YAML, or the problems found: (key path below the rule, message) each."""
    if not isinstance(raw, dict):
        return None, [((), "must be a mapping of field: {min|max|eq|in|has: value}")]
    tests: list[Test] = []
    problems: list[tuple[tuple[Any, ...], str]] = []
    for name, spec in raw.items():
        if not isinstance(spec, dict) or not spec:
            problems.append(((name,), f"must be a mapping of tests ({', '.join(OPS)}), e.g. {{min: 60}}"))
            continue
        unknown = [k for k in spec if k not in OPS]
        if unknown:
            problems += [((name, k), f"unknown test; expected one of {', '.join(OPS)}") for k in unknown]
            continue
        bounds: dict[str, float | None] = {"min": None, "max": None}
        for op in ("min", "max"):
            if op in spec:
                bounds[op] = amount(spec[op])
                if bounds[op] is None:
                    problems.append(((name, op), f"must be a number (50万 works), got {spec[op]!r}"))
        one_of = spec.get("in", [])
        if "in" in spec and (not isinstance(one_of, list) or not one_of):
            problems.append(((name, "in"), "must be a non-empty list"))
            one_of = []
        has = spec.get("has")
        if has is not None and not isinstance(has, str | int):
            problems.append(((name, "has"), "must be one value, e.g. payroll"))
        tests.append(Test(field=str(name), min=bounds["min"], max=bounds["max"], eq=spec.get("eq"),
                          one_of=tuple(one_of), has=None if has is None else str(has)))
    return (Rule(tuple(tests)) if not problems else None), problems
