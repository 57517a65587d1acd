"""What other features may use of the CRM integration: its customer records and identity links,
and its key events as they are dispatched (the SOP engine reads CRM attributes and key events)."""

from __future__ import annotations

from .auth import AuthError
from .events import CrmKeyEvent
from .http import read_signed_batch
from .identity import link_contacts
from .models import Binding, CrmCustomer, CrmEvent, CrmGroup
from .settings import crm_settings
from .store import queue_sync
from .webhook import KIND as WEBHOOK_KIND
from .writeback import baselines as writeback_baselines
from .writeback import crm_owned_tag_ids

__all__ = ["Binding", "CrmCustomer", "CrmEvent", "CrmGroup", "CrmKeyEvent", "crm_owned_tag_ids", "link_contacts",
           "queue_sync", "writeback_baselines"]
# Other features' CRM endpoints (the staff directory's HR push, succession's moves) read their
# batches alike; succession tells the CRM of owner changes as webhook actions.
__all__ += ["WEBHOOK_KIND", "AuthError", "crm_settings", "read_signed_batch"]
