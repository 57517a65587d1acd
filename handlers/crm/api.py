"""What other features may use of the CRM integration: its customer records and identity links,
and its key events as they are dispatched (the SOP engine reads CRM attributes and key events)."""

from __future__ import annotations

from .auth import AuthError
from .events import CrmKeyEvent
from .http import read_signed_batch
from .models import Binding, CrmCustomer, CrmEvent, CrmGroup

__all__ = ["AuthError", "Binding", "CrmCustomer", "CrmEvent", "CrmGroup", "CrmKeyEvent", "read_signed_batch"]
