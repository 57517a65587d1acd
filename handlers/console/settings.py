"""``[console]``: the operations console's sign-in and sessions."""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator

from scrm.kernel.config import Cron, Section, Settings, section

# WeCom's web login (企业微信登录, the member scans a QR code with the WeCom app).
WECOM_LOGIN_URL = "https://login.work.weixin.qq.com/wwlogin/sso/login"


class ConsoleSettings(Section):
    enabled: bool = True
    # Who may sign in, with which role and scope (YAML in git, beside the playbook): a path under
    # [playbook] sop_dir, or absolute.
    access_file: str = "console.yaml"
    # The break-glass local admin (user "admin"), for first set-up before anyone is in
    # access_file: an argon2 hash from `scrm console hash-password`; empty = no local admin.
    admin_password_hash: SecretStr = SecretStr("")
    # A session ends after this long without a request, and in any case after max_s.
    idle_timeout_s: int = Field(30 * 60, ge=60)
    max_s: int = Field(12 * 3600, ge=300)
    # WeCom's web-login page; empty = WeCom's own, or the sandbox's when [wecom] api_base points
    # at one (`scrm serve --sandbox`).
    login_url: str = ""
    # The cockpit's nightly roll-up (playbook time zone; "" turns it off: the cockpit then
    # computes every day live, slowly) and how far back it rolls up: the longest period (90
    # days) and the previous one beside it.
    rollup_cron: Cron = "20 0 * * *"
    rollup_history_days: int = Field(181, ge=1, le=3660)

    @field_validator("admin_password_hash")
    @classmethod
    def _argon2(cls, v: SecretStr) -> SecretStr:
        value = v.get_secret_value()
        if value and not value.startswith("$argon2"):
            raise ValueError("must be an argon2 hash from `scrm console hash-password`, never the password itself")
        return v


def console_settings(settings: Settings) -> ConsoleSettings:
    """The ``[console]`` section of ``settings``."""
    return section(settings, "console", ConsoleSettings)


def login_url(settings: Settings) -> str:
    """Where the browser goes to sign in with WeCom."""
    own = console_settings(settings).login_url
    if own:
        return own
    origin = settings.wecom.emulator_origin()  # the sandbox serves the login page itself
    return WECOM_LOGIN_URL if origin is None else origin + "/wwlogin/sso/login"


def cookie_is_secure(settings: Settings) -> bool:
    """Secure cookies wherever the console is served over HTTPS (a bank's intranet address); a
    plain-HTTP address (the sandbox on 127.0.0.1) could not send them back."""
    return settings.server.public_url.lower().startswith("https://")
