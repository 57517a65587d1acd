"""The internal events the CRM integration owns (its ``Feature.events``).

``CrmKeyEvent`` is consumed by the SOP engine (through :mod:`handlers.crm.api`); the others only
by the CRM's own handlers.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from pydantic import Field, field_serializer

from scrm.kernel.events import Internal, Scheduled

SOURCE = "crm"


class CrmChanged(Internal):
    """Customers whose records or bindings changed (a push, an import, a binding): incremental tag sync."""

    KIND: ClassVar[str] = "crm.changed"
    SOURCE: ClassVar[str] = SOURCE

    crm_ids: tuple[str, ...]
    generation: str  # the outbox keys' generation: the same change queued twice is one event


class CrmKeyEvent(Internal):
    """One key event from the CRM (maturity, large transfer, tier or manager change …), stored once.

    Stored payload keys: ``event_id``, ``crm_id``, ``kind`` (``event_kind``), ``at``
    (``occurred_at``, the CRM's own time), ``payload`` (``details``), ``external_userid``.
    """

    KIND: ClassVar[str] = "crm.event"
    SOURCE: ClassVar[str] = SOURCE

    event_id: str
    crm_id: str
    event_kind: str = Field(serialization_alias="kind")  # one of handlers.crm.records.EVENT_KINDS
    occurred_at: datetime = Field(serialization_alias="at")
    details: dict[str, Any] = Field(default_factory=dict, serialization_alias="payload")
    external_userid: str | None = None  # the bound WeCom contact, when known

    @field_serializer("occurred_at")
    def _occurred_iso(self, value: datetime) -> str:
        return value.isoformat()  # as the CRM store always wrote it


class CrmNightly(Scheduled):
    """One chunk of the tag reconciliation: fired nightly by the scheduler (``crm.nightly`` job),
    by a wait job while the outbox is full, or by the CRM itself (next chunk, a CRM-owned tag
    renamed or deleted in WeCom)."""

    KIND: ClassVar[str] = "crm.nightly"
    SOURCE: ClassVar[str] = SOURCE

    generation: str | None = None  # None: the scheduled run names its own ("n" + fire minute)
    after: int = 0  # the relation cursor this chunk starts after


EVENTS: tuple[type[Internal], ...] = (CrmChanged, CrmKeyEvent, CrmNightly)
