"""The tags feature as the service composes it."""

from __future__ import annotations

from scrm.kernel.feature import Feature

from . import models
from .handlers import router

# After crm: the CRM reconciliation of a renamed CRM-owned tag group reads the group's old name
# from the mirror, which this feature's handler then overwrites with the new one.
FEATURE = Feature(name="tags", router=router, models=models, after=("crm",))
