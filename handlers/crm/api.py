"""What other features may use of the CRM integration: its customer records and identity links,
and its key events as they are dispatched (the SOP engine reads CRM attributes and key events)."""

from __future__ import annotations

from .events import CrmKeyEvent
from .models import Binding, CrmCustomer, CrmEvent, CrmGroup

__all__ = ["Binding", "CrmCustomer", "CrmEvent", "CrmGroup", "CrmKeyEvent"]
