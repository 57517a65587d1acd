"""``[radar]``: link signing, WeCom OAuth, alert windows, the digest, the click queue bound."""

from __future__ import annotations

from pydantic import Field, SecretStr

from scrm.kernel.config import Cron, Section, Settings, section


class RadarSettings(Section):
    signing_key: SecretStr = SecretStr("")
    oauth_enabled: bool = False
    # WeCom's OAuth page; tests and the sandbox point it at the sandbox's /connect/oauth2/authorize.
    oauth_authorize_url: str = "https://open.weixin.qq.com/connect/oauth2/authorize"
    # At most one alert per customer per material per window; the rest go to the daily digest.
    alert_window_s: int = Field(3600, ge=1)
    digest_cron: Cron = "0 18 * * *"
    # The redirect never waits for the click's commit; clicks queue for the inbox's group-commit
    # writer. Beyond this many clicks waiting for their commit (the database is not keeping up) a
    # click is dropped, logged, and the customer is still redirected: bounded memory beats a blank page.
    record_queue_max: int = Field(10_000, ge=1)



def radar_settings(settings: Settings) -> RadarSettings:
    """The ``[radar]`` section of ``settings``."""
    return section(settings, "radar", RadarSettings)
