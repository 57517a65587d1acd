"""``[membership]``: when the nightly lapse and review run, and how many members a chunk takes."""

from __future__ import annotations

from pydantic import Field

from scrm.kernel.config import Cron, Section, Settings, section


class MembershipSettings(Section):
    # Lapses due points, and on review days (sop/membership.yaml review.every) reviews levels.
    # Cron in the playbook's time zone; "" turns it off.
    nightly_cron: Cron = "0 4 * * *"
    # Members per chunk: one transaction (and one inbox event) each.
    chunk: int = Field(2000, ge=10, le=50_000)


def membership_settings(settings: Settings) -> MembershipSettings:
    """The ``[membership]`` section of ``settings``."""
    return section(settings, "membership", MembershipSettings)
