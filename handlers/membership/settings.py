"""``[membership]``: when the nightly lapse and review run, how many members a chunk takes, and how
long a redemption waits for the fulfilment system's answer."""

from __future__ import annotations

from pydantic import Field, SecretStr

from scrm.kernel.config import Cron, Section, Settings, section


class MembershipSettings(Section):
    # Lapses due points, and on review days (sop/membership.yaml review.every) reviews levels.
    # Cron in the playbook's time zone; "" turns it off.
    nightly_cron: Cron = "0 4 * * *"
    # Members per chunk: one transaction (and one inbox event) each.
    chunk: int = Field(2000, ge=10, le=50_000)
    # A redemption the bank's fulfilment system (through the CRM webhook, [crm] webhook_url) has
    # not answered by then is cancelled and its points given back.
    redeem_timeout_s: int = Field(24 * 3600, ge=60, le=30 * 86400)
    # Seals the customers' check-in and quiz links; derived from the WeCom secrets when empty
    # (links then stay valid as long as those do).
    link_key: SecretStr = SecretStr("")


def membership_settings(settings: Settings) -> MembershipSettings:
    """The ``[membership]`` section of ``settings``."""
    return section(settings, "membership", MembershipSettings)
