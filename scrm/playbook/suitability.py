"""Suitability (适当性) and marketing consent: the compliance team's rules, and the pure checks.

``sop/compliance/suitability.yaml`` (optional; the defaults below when absent) says which CRM
attributes carry a customer's risk assessment level (C1–C5), its expiry, and their marketing
consent per category, and up to which product risk level a material may go where nobody can
be checked one by one (customer groups, welcomes). A material with ``risk_level`` is a
*product material*: it goes 1:1 only to a customer whose assessment is current and at least
as high (C3 allows R1–R3), and a material with ``product_category`` only to a customer who has
not refused that category. These functions answer with a reason (``suitability: …``,
``consent: …``) that the SOP planner, the send-time re-check and the sidebar record as is.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import Field, model_validator

from .fields import Ident, Strict
from .issues import KeyPath, PlaybookIssue
from .models import Material, RiskLevel

if TYPE_CHECKING:
    from .references import Loaded

FILE = "compliance/suitability.yaml"
"""Where the rules live, relative to sop/."""


class SuitabilityRules(Strict):
    """sop/compliance/suitability.yaml."""

    categories: list[Ident] = Field(
        default_factory=lambda: ["wealth", "loans", "cards", "insurance", "events"],
        description="marketing consent categories a material's product_category may name")
    group_max_risk: RiskLevel | None = Field(
        None, description="highest product risk allowed where customers cannot be checked one by one "
                          "(groups, welcomes); empty: no product material there at all")
    risk_level_attribute: str = Field("risk_level", min_length=1, description="CRM attribute: C1–C5 (or 1–5)")
    risk_expiry_attribute: str = Field("risk_expiry", min_length=1, description="CRM attribute: YYYY-MM-DD")
    consent_attribute: str = Field("marketing_consent", min_length=1,
                                   description="CRM attribute: a map category → true/false")
    consent_default: bool = Field(True, description="a category the customer never answered: allowed?")

    @model_validator(mode="after")
    def _unique(self) -> SuitabilityRules:
        if len(set(self.categories)) != len(self.categories):
            raise ValueError("categories are listed twice")
        return self


DEFAULT_RULES = SuitabilityRules()


class Product(Protocol):
    """What the checks read of a material (a :class:`Material`, or a queued send's note of one)."""

    @property
    def id(self) -> str: ...
    @property
    def risk_level(self) -> str | None: ...
    @property
    def product_category(self) -> str | None: ...


def risk_number(level: str) -> int:
    """R3 → 3."""
    return int(level[1:])


_LEVEL = re.compile(r"[Cc]?([1-5])")


def customer_level(value: object) -> int | None:
    """A customer's assessment level as the CRM gives it (``C3``, ``3``, 3) → 3; None if unreadable."""
    if isinstance(value, bool) or value is None:
        return None
    match = _LEVEL.fullmatch(str(value).strip())
    return int(match[1]) if match else None


def _expiry(value: object) -> date | None:
    if isinstance(value, date):
        return value.date() if isinstance(value, datetime) else value
    if isinstance(value, str) and len(value) >= 10:
        try:
            return date.fromisoformat(value[:10])
        except ValueError:
            return None
    return None


def assessment(attributes: Mapping[str, Any], rules: SuitabilityRules) -> tuple[int | None, date | None]:
    """The customer's (level, expiry) from their CRM record; None where missing or unreadable."""
    return (customer_level(attributes.get(rules.risk_level_attribute)),
            _expiry(attributes.get(rules.risk_expiry_attribute)))


def suitability_problem(material: Product, attributes: Mapping[str, Any], today: date,
                        rules: SuitabilityRules) -> str | None:
    """Why ``material`` may not go 1:1 to this customer on ``today`` (None: it may, or it is no product).

    A missing or unreadable expiry counts as expired: an assessment nobody can date is not current."""
    if material.risk_level is None:
        return None
    level, expiry = assessment(attributes, rules)
    risk = material.risk_level
    if level is None:
        return f"suitability: no risk assessment for {risk} material {material.id!r}"
    if expiry is None:
        return f"suitability: risk assessment C{level} has no expiry date ({risk} material {material.id!r})"
    if expiry < today:
        return f"suitability: risk assessment C{level} expired on {expiry} ({risk} material {material.id!r})"
    if risk_number(risk) > level:
        return f"suitability: {risk} > C{level} (material {material.id!r})"
    return None


def suitability_decision(material: Product, attributes: Mapping[str, Any], rules: SuitabilityRules) -> str:
    """The trail's line for a product material that passed: ``suitability: R2 ≤ C3 (valid until …)``."""
    level, expiry = assessment(attributes, rules)
    return f"suitability: {material.risk_level} ≤ C{level} (valid until {expiry})"


def crm_consents(attributes: Mapping[str, Any], rules: SuitabilityRules) -> dict[str, bool]:
    """The consent map the CRM keeps on the customer (category → granted); {} when absent."""
    raw = attributes.get(rules.consent_attribute)
    if not isinstance(raw, Mapping):
        return {}
    return {str(k): v for k, v in raw.items() if isinstance(v, bool)}


def consent_problem(material: Product, consents: Mapping[str, bool], rules: SuitabilityRules) -> str | None:
    """Why ``material`` may not go to a customer with ``consents`` (None: it may, or it has no category)."""
    category = material.product_category
    if category is None:
        return None
    if not consents.get(category, rules.consent_default):
        return f"consent: {category} withdrawn (material {material.id!r})"
    return None


def group_problem(material: Product, rules: SuitabilityRules) -> str | None:
    """Why ``material`` may not go where customers cannot be checked one by one (a group, a welcome)."""
    if material.risk_level is None:
        return None
    ceiling = rules.group_max_risk
    if ceiling is None or risk_number(material.risk_level) > risk_number(ceiling):
        allowed = f"group_max_risk is {ceiling}" if ceiling else "group_max_risk is not set"
        return (f"suitability: {material.risk_level} material {material.id!r} cannot be checked per customer "
                f"here ({allowed}); send it 1:1 (a path or to: members)")
    return None


# --- validate ------------------------------------------------------------------------------

UncheckedUse = tuple[Any, KeyPath, str]
"""(source file, key path, material id) of a use whose audience cannot be checked one by one."""


def unchecked_uses(x: Loaded) -> Iterator[UncheckedUse]:
    """Where a material reaches customers nobody can check one by one: a post in a customer group
    (and its owner's task card about the group), and every welcome (a reply to the customer's
    own add or join, sent before any assessment could be looked at)."""
    for cal in x.calendars:
        entries = [*((("steps", i), e) for i, e in enumerate(cal.value.steps)),
                   *((("recurring", i), e) for i, e in enumerate(cal.value.recurring))]
        for path, entry in entries:
            if entry.to != "members" and entry.send:
                yield cal.source, (*path, "send"), entry.send
            if entry.task:
                yield cal.source, (*path, "task"), entry.task
    if x.default_welcome is not None:
        yield x.default_welcome.source, x.default_welcome.path, x.default_welcome.value
    for ch in x.channels.values():
        if ch.value.welcome:
            yield ch.source, (*ch.path, "welcome"), ch.value.welcome
    for gt in x.group_types.values():
        if gt.value.welcome:
            yield gt.source, (*gt.path, "welcome"), gt.value.welcome


def unchecked_issues(uses: Iterator[UncheckedUse], materials: Mapping[str, Material],
                     rules: SuitabilityRules) -> list[PlaybookIssue]:
    """An error at each group post, group task or welcome whose product material is above the ceiling."""
    out: list[PlaybookIssue] = []
    for src, path, mid in uses:
        material = materials.get(mid)
        problem = group_problem(material, rules) if material is not None else None
        if problem is not None:
            out.append(src.issue(path, problem))
    return out


def category_issues(materials: Iterator[tuple[Any, KeyPath, Material]], rules: SuitabilityRules
                    ) -> list[PlaybookIssue]:
    """An error at each material whose product_category is not a consent category."""
    out: list[PlaybookIssue] = []
    for src, path, m in materials:
        if m.product_category is not None and m.product_category not in rules.categories:
            out.append(src.issue((*path, "product_category"),
                                 f"unknown category {m.product_category!r}; sop/{FILE} lists: "
                                 f"{', '.join(rules.categories)}"))
    return out
