"""What the CRM sends us, whatever the adapter (file, HTTP): validated records.

Field errors name the field; adapters add the position (``file:line`` or ``customers[3]``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

_ID = Field(min_length=1, max_length=128)


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


class EventRecord(Record):
    """A key event (large transfer, maturity, tier change, manager change ...)."""

    event_id: str = Field(min_length=1, max_length=256)
    crm_id: str = _ID
    kind: str = Field(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_.]*$")
    at: datetime
    payload: dict[str, Any] = Field(default_factory=dict)

    @field_validator("at")
    @classmethod
    def _aware(cls, v: datetime) -> datetime:
        if v.tzinfo is None:
            raise ValueError("needs a time zone, e.g. 2026-11-01T09:30:00+08:00")
        return v


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
