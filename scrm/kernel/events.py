"""Events that do not come from WeCom: scheduler ticks, CRM changes, radar clicks.

They travel through the same inbox and dispatcher as callbacks (one pipeline, one error path);
handlers match them by ``kind`` (e.g. ``"crm.event"``, ``"sop.due"``, ``"radar.click"``).
A leaf module.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class InternalEvent(BaseModel):
    model_config = ConfigDict(frozen=True)

    source: str  # scheduler | crm | radar | ...
    kind: str
    at: datetime
    payload: dict[str, Any] = Field(default_factory=dict)
