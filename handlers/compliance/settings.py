"""``[compliance]``: how long the message trail keeps its records, and when it purges."""

from __future__ import annotations

from pydantic import Field

from scrm.kernel.config import Cron, Section, Settings, section


class ComplianceSettings(Section):
    # Days a trail record is kept, by kind (welcome, mass_send, handover, sop, sidebar …); a kind
    # not named keeps ``retain_days``. Five years by default: what banks keep customer
    # communication for; a regulator's longer rule goes here.
    retain_days: int = Field(1826, ge=1)
    retain_days_by_kind: dict[str, int] = Field(default_factory=dict)
    # When expired records are purged (the playbook's time zone); "" never purges.
    purge_cron: Cron = "30 3 * * *"


def compliance_settings(settings: Settings) -> ComplianceSettings:
    """The ``[compliance]`` section of ``settings``."""
    return section(settings, "compliance", ComplianceSettings)
