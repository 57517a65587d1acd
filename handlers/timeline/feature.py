"""The timeline recorder as the service composes it."""

from __future__ import annotations

from scrm.kernel.feature import Feature

from . import models
from .handlers import router

# Last: the business handlers call WeCom (reads) before writing, and on SQLite the first write
# of an event's transaction holds the database's write lock until commit; the recorder only writes.
FEATURE = Feature(name="timeline", router=router, models=models,
                  after=("contacts", "crm", "groups", "radar", "sop", "tags"))
