"""Marketing consent per category: what a customer said, from wherever they said it.

Three ways in: the CRM's map on the customer record (``marketing_consent: {wealth: false}``, the
attribute named in ``sop/compliance/suitability.yaml``), the sidebar (the customer told their
manager) and the preference page (the customer's own signed link). The last two are rows of
``customer_consent``; the CRM's map counts as said when the CRM last updated the record. Per
category the latest statement wins; a category nobody answered follows ``consent_default``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.compliance.models import CustomerConsent
from scrm.playbook.suitability import SuitabilityRules, crm_consents

Source = Literal["crm", "sidebar", "preference"]
SOURCES: tuple[Source, ...] = ("crm", "sidebar", "preference")


@dataclass(frozen=True)
class Said:
    """One statement about one category."""

    granted: bool
    at: datetime
    source: str


async def record_consent(db: AsyncSession, external_userid: str, category: str, granted: bool, *,
                         source: Source, at: datetime, by: str = "") -> None:
    """Append what the customer said (in ``db``'s transaction); the latest statement wins."""
    db.add(CustomerConsent(external_userid=external_userid, category=category, granted=granted, source=source,
                           by=by, at=at))


async def consent_rows(db: AsyncSession, external_userids: Iterable[str]) -> dict[str, dict[str, Said]]:
    """The latest recorded statement per category of each customer (customers with none left out)."""
    ids = sorted(set(external_userids))
    out: dict[str, dict[str, Said]] = {}
    for start in range(0, len(ids), 1000):
        rows = await db.execute(
            select(CustomerConsent.external_userid, CustomerConsent.category, CustomerConsent.granted,
                   CustomerConsent.at, CustomerConsent.source, CustomerConsent.id)
            .where(CustomerConsent.external_userid.in_(ids[start:start + 1000]))
            .order_by(CustomerConsent.at, CustomerConsent.id))
        for ext, category, granted, at, source, _ in rows.all():
            out.setdefault(ext, {})[category] = Said(bool(granted), at, source)  # later rows overwrite
    return out


def merged_consents(attributes: Mapping[str, Any], crm_at: datetime | None, said: Mapping[str, Said],
                    rules: SuitabilityRules) -> dict[str, bool]:
    """Category → granted: the CRM's map (as of ``crm_at``) and the recorded statements, latest wins.

    Without ``crm_at`` the CRM's map is older than any recorded statement."""
    crm_time = crm_at.timestamp() if crm_at is not None else float("-inf")
    out = {cat: (crm_time, granted) for cat, granted in crm_consents(attributes, rules).items()}
    for cat, s in said.items():
        if cat not in out or s.at.timestamp() >= out[cat][0]:
            out[cat] = (s.at.timestamp(), s.granted)
    return {cat: granted for cat, (_, granted) in out.items()}
