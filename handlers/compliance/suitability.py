"""Suitability and consent for one customer: may this product material reach them, and why.

The rules are the playbook's (``sop/compliance/suitability.yaml``, pure checks in
:mod:`scrm.playbook.suitability`); this module puts a customer's CRM record and recorded consent
together and answers with the reason a send, a task or a sidebar offer is refused, or the lines
the message trail keeps for one that passed. Callers read the CRM (they require it); this
feature only adds the consent it records.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from handlers.compliance.consent import Said, merged_consents
from scrm.playbook.suitability import (
    Product,
    SuitabilityRules,
    consent_problem,
    suitability_decision,
    suitability_problem,
)


@dataclass(frozen=True)
class CustomerFacts:
    """What the checks need of one customer: their CRM record and their consent per category."""

    attributes: Mapping[str, Any] = field(default_factory=dict)
    consents: Mapping[str, bool] = field(default_factory=dict)


@dataclass(frozen=True)
class ProductNote:
    """A product material as a queued send remembers it (the send-time re-check reads this)."""

    id: str
    risk_level: str | None
    product_category: str | None

    def as_json(self) -> dict[str, str | None]:
        return {"material": self.id, "risk_level": self.risk_level, "product_category": self.product_category}

    @classmethod
    def of(cls, data: Mapping[str, Any]) -> ProductNote:
        return cls(str(data.get("material") or ""), data.get("risk_level"), data.get("product_category"))


def is_product(material: Product) -> bool:
    """Whether suitability or consent applies to ``material`` at all."""
    return material.risk_level is not None or material.product_category is not None


def facts_of(attributes: Mapping[str, Any], crm_at: datetime | None, said: Mapping[str, Said],
             rules: SuitabilityRules) -> CustomerFacts:
    return CustomerFacts(dict(attributes), merged_consents(attributes, crm_at, said, rules))


def refusal(material: Product, facts: CustomerFacts, today: date, rules: SuitabilityRules) -> str | None:
    """Why ``material`` may not reach this customer 1:1 today (``suitability: …`` / ``consent: …``)."""
    return (suitability_problem(material, facts.attributes, today, rules)
            or consent_problem(material, facts.consents, rules))


def decisions(material: Product, facts: CustomerFacts, rules: SuitabilityRules) -> list[str]:
    """The trail's lines for a material that passed :func:`refusal`."""
    out = []
    if material.risk_level is not None:
        out.append(suitability_decision(material, facts.attributes, rules))
    if material.product_category is not None:
        out.append(f"consent: {material.product_category}")
    return out


_ZH = (
    (re.compile(r"suitability: no risk assessment"), "尚无风险评估"),
    (re.compile(r"suitability: risk assessment C\d has no expiry date"), "的风险评估缺少有效期"),
    (re.compile(r"suitability: risk assessment C\d expired on (\S+)"), r"的风险评估已于\1过期"),
    (re.compile(r"suitability: (R\d) > (C\d)"), r"的风险承受等级\2低于产品风险等级\1"),
    (re.compile(r"consent: (\S+) withdrawn"), r"已表示不接收此类营销（\1）"),
)


def reason_zh(reason: str) -> str:
    """A refusal as a manager reads it (``客户…`` follows the customer's name)."""
    for pattern, text in _ZH:
        match = pattern.match(reason)
        if match:
            return match.expand(text)
    return reason
