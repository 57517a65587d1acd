"""What other features may use of the CRM integration: its customer records and identity links,
and its key events as they are dispatched (the SOP engine reads CRM attributes and key events)."""

from __future__ import annotations

from .auth import AuthError
from .events import CrmKeyEvent
from .http import read_signed_batch
from .identity import link_contacts
from .models import Binding, CrmCustomer, CrmEvent, CrmGroup
from .records import EVENT_KINDS
from .settings import crm_settings
from .store import queue_sync
from .tagmap import DEFAULT_AUM_BANDS, attribute_values, aum_band
from .webhook import KIND as WEBHOOK_KIND
from .writeback import baselines as writeback_baselines
from .writeback import crm_owned_tag_ids
from .writeback import report_changes as report_tag_changes

__all__ = ["Binding", "CrmCustomer", "CrmEvent", "CrmGroup", "CrmKeyEvent", "crm_owned_tag_ids", "link_contacts",
           "queue_sync", "writeback_baselines"]
# Other features' CRM endpoints (the staff directory's HR push, succession's moves) read their
# batches alike; succession tells the CRM of owner changes as webhook actions.
__all__ += ["WEBHOOK_KIND", "AuthError", "crm_settings", "read_signed_batch"]
# Sensitive figures leave only as bands (the sidebar and the console show AUM alike).
__all__ += ["DEFAULT_AUM_BANDS", "aum_band"]
# The sidebar's tag edits (mark_tag: no WeCom callback follows) report to the CRM as a client edit would.
__all__ += ["report_tag_changes"]
# The membership ledger's behaviours name the CRM event kinds they earn on (checked against these).
__all__ += ["EVENT_KINDS"]
# The lifecycle's segment rules read multi-valued CRM attributes as the tag map does.
__all__ += ["attribute_values"]
