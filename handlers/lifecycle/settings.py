"""``[lifecycle]``: when the nightly scoring runs and how many customers a chunk takes."""

from __future__ import annotations

from pydantic import Field

from scrm.kernel.config import Cron, Section, Settings, section


class LifecycleSettings(Section):
    # The nightly scoring (cron, playbook time zone); "" turns it off. After the CRM's own
    # nightly import (02:30 by default) so tiers and stages see the night's figures.
    nightly_cron: Cron = "30 3 * * *"
    # Customers per chunk: one transaction (and one inbox event) each.
    chunk: int = Field(2000, ge=10, le=50_000)


def lifecycle_settings(settings: Settings) -> LifecycleSettings:
    """The ``[lifecycle]`` section of ``settings``."""
    return section(settings, "lifecycle", LifecycleSettings)
