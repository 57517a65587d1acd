"""``[console]``: the operations console's sign-in and sessions, its jobs, the BI's tokens."""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator

from scrm.kernel.config import Cron, Section, Settings, section

# WeCom's web login (企业微信登录, the member scans a QR code with the WeCom app).
WECOM_LOGIN_URL = "https://login.work.weixin.qq.com/wwlogin/sso/login"


class BiToken(Section):
    """One token of the bank's BI for ``GET /api/v1/reports/NAME`` (``scrm console bi-token``).

    Only the token's SHA-256 is kept: a token is 32 random bytes, so its hash cannot be reversed
    or guessed (a slow hash such as argon2 guards low-entropy passwords, and would cost every
    BI request tens of milliseconds of CPU for nothing)."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,32}$")  # audited as bi:<name>
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    scope: str = ""  # a department path (分行/支行/团队); "" = the whole bank

    @field_validator("scope")
    @classmethod
    def _path(cls, v: str) -> str:
        return v.strip().strip("/")


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
    # How long the cockpit page keeps today's live figures (computed from the raw rows on every
    # view otherwise: ~0.5 s on a million customers), per service process; the page says "截至
    # HH:MM". 0 = every view computes them. Reports, the BI API and the digest never use it.
    live_cache_s: int = Field(60, ge=0, le=3600)
    # The weekly digest to every team lead and branch head of access_file (playbook time zone;
    # "" turns it off): last week's key figures beside the week before, and a link to the cockpit.
    # Name the weekday: the scheduler's cron (APScheduler 3) counts 0 = Monday, so "* * 1" is Tuesday.
    digest_cron: Cron = "0 9 * * mon"
    # When the SOP calendar's 30-day outlook is planned again each night (playbook time zone; ""
    # turns the nightly run off: it is then planned only at start and after a playbook reload,
    # and its first day falls behind). Planning a million customers takes minutes of CPU.
    outlook_cron: Cron = "0 1 * * *"
    # When the 客群与会员 page's snapshot (behaviour matrix and membership figures per manager) is
    # taken each night (playbook time zone; "" turns it off): after the lifecycle (03:30) and
    # membership (04:00) nightlies. Also taken at start when none is stored.
    segments_cron: Cron = "30 4 * * *"
    # The BI's tokens: [{name = "powerbi", sha256 = "…", scope = "杭州分行"}], each line printed by
    # `scrm console bi-token NAME [--scope PATH]`; none = the BI API answers 401 to everyone.
    bi_tokens: list[BiToken] = Field(default_factory=list)

    @field_validator("admin_password_hash")
    @classmethod
    def _argon2(cls, v: SecretStr) -> SecretStr:
        value = v.get_secret_value()
        if value and not value.startswith("$argon2"):
            raise ValueError("must be an argon2 hash from `scrm console hash-password`, never the password itself")
        return v

    @field_validator("bi_tokens")
    @classmethod
    def _distinct(cls, v: list[BiToken]) -> list[BiToken]:
        for what in ("name", "sha256"):
            seen = [getattr(t, what) for t in v]
            if len(set(seen)) != len(seen):
                raise ValueError(f"two BI tokens share a {what}")
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
