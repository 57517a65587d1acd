"""CRM integration: the push API, file imports and the drop folder, identity links, tag sync
both ways (incremental, nightly reconciliation) and the write-back webhook (``scrm crm``)."""

from __future__ import annotations

from .feature import FEATURE
from .handlers import router

__all__ = ["FEATURE", "router"]
