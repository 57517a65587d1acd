"""``[crm]``: the push API's secret, the drop folder, the write-back webhook, tag sync pacing."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr

from handlers.crm.store import DEFAULT_TIER_ORDER, TierRule
from scrm.kernel.config import Cron, Section, Settings, section


class CrmSettings(Section):
    hmac_secret: SecretStr = SecretStr("")
    replay_window_s: int = Field(300, ge=1)
    inbox_dir: Path | None = None
    webhook_url: str = ""
    webhook_secret: SecretStr = SecretStr("")
    # Nightly reconciliation of CRM-owned tags (cron, playbook time zone); "" disables it.
    nightly_cron: Cron = "30 2 * * *"
    # Relations per tag-sync chunk: one transaction, one resume point.
    sync_chunk: int = Field(500, ge=1, le=10000)
    # Watched drop folder: how often to look for new CSV/JSONL files.
    inbox_poll_s: float = Field(30.0, gt=0)
    # The customer attribute that is the tier, and its levels lowest first: a customer upsert that
    # moves it between two levels raises tier_up / tier_down.
    tier_attribute: str = Field("tier", min_length=1)
    tier_order: tuple[str, ...] = DEFAULT_TIER_ORDER

    @property
    def tiers(self) -> TierRule:
        return TierRule(self.tier_attribute, self.tier_order)



def crm_settings(settings: Settings) -> CrmSettings:
    """The ``[crm]`` section of ``settings``."""
    return section(settings, "crm", CrmSettings)
