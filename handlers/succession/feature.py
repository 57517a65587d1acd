"""The succession feature as the service composes it."""

from __future__ import annotations

from scrm.kernel.feature import Feature

FEATURE = Feature(name="succession", requires=("contacts", "crm", "groups", "sop", "staff", "timeline"))
