"""The backfill feature as the service composes it."""

from __future__ import annotations

from scrm.kernel.feature import Feature

FEATURE = Feature(name="backfill", requires=("contacts", "crm", "groups", "staff", "tags"))
