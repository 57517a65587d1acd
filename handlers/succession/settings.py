"""``[succession]``: how often unassigned customers are swept up and transfers followed."""

from __future__ import annotations

from pydantic import Field

from scrm.kernel.config import Cron, Section, Settings, section


class SuccessionSettings(Section):
    # The sweep of get_unassigned_list (customers of members who left, also before the service
    # was installed). A deleted member's callback triggers one at once, and one runs at start, so
    # this is the safety net for a callback WeCom never delivered. "" turns the periodic one off.
    sweep_cron: Cron = "40 */6 * * *"
    # Seconds between two reads of transfer_result while a batch has transfers waiting.
    follow_s: int = Field(600, ge=10)
    # First look at a new batch: once its calls have had time to go out.
    first_follow_s: int = Field(30, ge=1)
    # A transfer WeCom still reports waiting this long after it started is recorded ``timeout``
    # (WeCom takes a customer over after 24 h unless refused, so this means something is wrong).
    timeout_h: int = Field(72, ge=25)
    # A failed handover of a resigned member's customer is tried again by the sweep after this.
    retry_failed_h: int = Field(24, ge=1)


def succession_settings(settings: Settings) -> SuccessionSettings:
    """The ``[succession]`` section of ``settings``."""
    return section(settings, "succession", SuccessionSettings)
