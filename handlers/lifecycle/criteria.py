"""The one small rule form both YAML files use: ``{field: {op: value, ...}, ...}``, all must hold.

::

    when: {age: {min: 60}, products: {has: payroll}, customer_type: {in: [merchant, sme]}}

Operators: ``min`` (≥), ``max`` (≤), ``eq``, ``in`` (one of), ``has`` (a list attribute holds
it). A field the customer has no value for fails its test: unknown data never qualifies anyone.
Numbers may be written as bankers do (``50万``); multi-valued attributes are read as the CRM's
tag map reads them. Pure; no I/O.

:meth:`Test.holds` is the definition, read it first. The nightly run evaluates the same tests a
few million times, so :meth:`Rule.compile` turns a rule into plain closures once (bounds with
their slack worked out, the values an ``eq``/``in`` compares with parsed ahead); a test checks
the two agree on random rules and values.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from handlers.crm.api import attribute_values as values_of

OPS = ("min", "max", "eq", "in", "has")

#: One field's tests, compiled: the raw attribute → whether it passes.
Check = Callable[[Any], bool]
#: A rule, compiled: the values by field → whether every test holds.
Verdict = Callable[[Mapping[str, Any]], bool]


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


def _within(low: float | None, high: float | None, slack: float) -> Check:
    """``min``/``max`` with the slack applied once; None and "" fail as no number."""
    lo = None if low is None else low - abs(low) * slack
    hi = None if high is None else high + abs(high) * slack

    def within(raw: Any) -> bool:
        number = amount(raw)
        if number is None:
            return False
        if lo is not None and number < lo:  # written as in holds(), so NaN passes alike
            return False
        return not (hi is not None and number > hi)
    return within


def _sameness(want: Any) -> Check:
    """``_same(raw, want)`` for one ``want``, with what depends on ``want`` alone worked out once."""
    want_values = values_of(want)
    if isinstance(want, bool):
        return lambda raw: values_of(raw) == want_values
    want_number = None if isinstance(want, str) else amount(want)
    want_text = str(want).strip()

    def same(raw: Any) -> bool:
        if isinstance(raw, bool):
            return values_of(raw) == want_values
        if want_number is not None:
            number = amount(raw)
            if number is not None:
                return number == want_number
        return str(raw).strip() == want_text
    return same


def _one_of(wants: tuple[Any, ...]) -> Check:
    """``in``: texts only (the usual case) is one set lookup; anything else each ``_same``."""
    if all(type(w) is str for w in wants):
        texts = frozenset(w.strip() for w in wants)
        as_values = [values_of(w) for w in wants]

        def listed(raw: Any) -> bool:
            if isinstance(raw, bool):  # _same compares a flag by its values ("true")
                flag = values_of(raw)
                return any(flag == v for v in as_values)
            return str(raw).strip() in texts
        return listed
    sames = tuple(_sameness(w) for w in wants)
    return lambda raw: any(same(raw) for same in sames)


def _holding(has: str) -> Check:
    """``has``: a list holding the value itself is the quick yes; else as the tag map reads it."""
    plain = has != "" and has == has.strip()

    def holding(raw: Any) -> bool:
        if plain and type(raw) is list:
            # values_of(raw) without building it: each present value, stripped.
            return has in raw or any(v is not None and str(v).strip() == has for v in raw)
        return has in values_of(raw)
    return holding


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

    def compile(self, slack: float = 0.0) -> Check:
        """:meth:`holds` with this ``slack`` as one closure (what :meth:`Rule.holds` runs)."""
        parts: list[Check] = []
        if self.min is not None or self.max is not None:
            parts.append(_within(self.min, self.max, slack))
        if self.eq is not None:
            parts.append(_sameness(self.eq))
        if self.one_of:
            parts.append(_one_of(self.one_of))
        if self.has is not None:
            parts.append(_holding(self.has))
        if len(parts) == 1 and (self.min is not None or self.max is not None):
            return parts[0]  # no number in None or "": the bounds alone decide
        if len(parts) == 1:
            only = parts[0]

            def check_one(raw: Any) -> bool:
                if raw is None or raw == "":
                    return False
                return only(raw)
            return check_one

        def check(raw: Any) -> bool:
            if raw is None or raw == "":
                return False
            return all(part(raw) for part in parts)
        return check


@dataclass(frozen=True)
class Rule:
    """Tests that must all hold (an empty rule holds for everyone)."""

    tests: tuple[Test, ...] = ()
    # Compiled forms by slack, made on first use (a rule meets at most two slacks).
    _verdicts: dict[float, Verdict] = field(default_factory=dict, init=False, repr=False, compare=False)

    def holds(self, values: Mapping[str, Any], *, slack: float = 0.0) -> bool:
        """Whether every test holds: ``all(t.holds(values.get(t.field), slack=slack))``, compiled."""
        verdict = self._verdicts.get(slack)
        if verdict is None:
            verdict = self._verdicts[slack] = self.compile(slack)
        return verdict(values)

    def compile(self, slack: float = 0.0) -> Verdict:
        checks = tuple((t.field, t.compile(slack)) for t in self.tests)
        if len(checks) == 1:
            (name, check), = checks
            return lambda values: check(values.get(name))

        def verdict(values: Mapping[str, Any]) -> bool:
            for name, check in checks:  # noqa: SIM110  (a loop: no generator a call, this runs millions of times)
                if not check(values.get(name)):
                    return False
            return True
        return verdict

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
