"""Service configuration: one TOML file plus ``SCRM_<SECTION>__<KEY>`` environment overrides.

Validated once at start-up. Secrets are ``SecretStr`` so they print as ``**********`` in logs,
errors and ``scrm config show``. This module is a leaf: it imports nothing of ours.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.cron import CronTrigger
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

CONFIG_ENV_VAR = "SCRM_CONFIG"
DEFAULT_CONFIG_FILE = "scrm.toml"


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


def check_cron(v: str) -> str:
    """A crontab expression ("30 2 * * *"); checked here so a typo stops start-up, not a job later."""
    if v.strip():
        try:
            CronTrigger.from_crontab(v.strip())
        except ValueError as exc:
            raise ValueError(f"bad cron expression {v!r}: {exc}") from None
    return v


# A settings field holding a crontab expression ("" = off), checked at load.
Cron = Annotated[str, AfterValidator(check_cron)]


class ServerSettings(Section):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    public_url: str = "http://127.0.0.1:8080"
    # WeCom callbacks are a few KiB; anything far bigger is hostile or broken.
    max_body_bytes: int = Field(64 * 1024, ge=1024)
    # How long a stop waits for the workers to end, then for the last writes to flush; what still
    # runs then is abandoned (and named in the log): a stuck worker never keeps the process alive.
    stop_timeout_s: float = Field(10.0, gt=0)
    # Reject callbacks whose timestamp is further than this from now (replay window), 0 = off.
    # The official samples do not check freshness; WeCom retries within seconds to minutes.
    timestamp_window_s: int = Field(0, ge=0)
    # Unix socket for `scrm sop reload` (0600). Default: one per playbook folder and port under
    # the temp folder, so no request file lands in the admins' git checkout.
    control_socket: Path | None = None


class DatabaseSettings(Section):
    url: str = "sqlite+aiosqlite:///./scrm.db"
    echo: bool = False
    # PostgreSQL connections (and as many again in overflow): the inbox and the outbox each
    # keep up to their `concurrency` events and actions in flight.
    pool_size: int = Field(16, ge=1)

    @field_validator("url")
    @classmethod
    def _known_driver(cls, v: str) -> str:
        if not (v.startswith("sqlite+aiosqlite://") or v.startswith("postgresql+asyncpg://")):
            raise ValueError("must start with sqlite+aiosqlite:// or postgresql+asyncpg://")
        return v

    @property
    def is_sqlite(self) -> bool:
        return self.url.startswith("sqlite")


_AES_KEY = re.compile(r"^[A-Za-z0-9]{43}$")
_TOKEN = re.compile(r"^[A-Za-z0-9]{1,32}$")


WECOM_API_BASE = "https://qyapi.weixin.qq.com"


class WeComSettings(Section):
    corp_id: str = ""
    agent_id: int = 0
    secret: SecretStr = SecretStr("")
    token: SecretStr = SecretStr("")
    encoding_aes_key: SecretStr = SecretStr("")
    api_base: str = WECOM_API_BASE
    # Client-side request timeout; a timeout after sending makes an outbox action `unknown`.
    request_timeout_s: float = Field(10.0, gt=0)
    # WeCom documents 10,000 calls/min per API per corp; stay below it by default.
    per_api_per_minute: int = Field(6000, ge=1)
    # Per-API overrides, e.g. {"externalcontact/mark_tag" = 3000}.
    api_limits_per_minute: dict[str, int] = Field(default_factory=dict)
    # App messages: WeCom silently drops more than 30/min and 1,000/h per member.
    app_msg_per_member_per_minute: int = Field(30, ge=1)
    app_msg_per_member_per_hour: int = Field(1000, ge=1)
    # Where instances count those per-member messages together: the database (default), Redis
    # (`redis_url`), or "off" (each instance alone: only for a single instance).
    shared_limits: Literal["database", "redis", "off"] = "database"
    redis_url: str = ""

    def emulator_origin(self) -> str | None:
        """``scheme://host:port`` of the WeCom emulator ``api_base`` points at (the sandbox), which
        also serves WeCom's browser pages (OAuth, web login, the JS-SDK harness); None for WeCom."""
        base = self.api_base.rstrip("/")
        if base == WECOM_API_BASE:
            return None
        parts = urlsplit(base)
        return f"{parts.scheme}://{parts.netloc}"

    @model_validator(mode="after")
    def _redis_needs_url(self) -> WeComSettings:
        if self.shared_limits == "redis" and not self.redis_url:
            raise ValueError("shared_limits = \"redis\" needs redis_url (e.g. redis://127.0.0.1:6379/0)")
        return self

    @field_validator("token")
    @classmethod
    def _token_shape(cls, v: SecretStr) -> SecretStr:
        if v.get_secret_value() and not _TOKEN.match(v.get_secret_value()):
            raise ValueError("must be 1-32 letters or digits (WeCom callback Token)")
        return v

    @field_validator("encoding_aes_key")
    @classmethod
    def _aes_shape(cls, v: SecretStr) -> SecretStr:
        if v.get_secret_value() and not _AES_KEY.match(v.get_secret_value()):
            raise ValueError("must be exactly 43 letters or digits (WeCom EncodingAESKey)")
        return v


class PlaybookSettings(Section):
    sop_dir: Path = Path("sop")
    materials_dir: Path = Path("materials")
    timezone: str = "Asia/Shanghai"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, v: str) -> str:
        # Used by the cron jobs only once the service runs: an unknown name must stop it here.
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {v!r}; use an IANA name such as Asia/Shanghai") from None
        return v

    def require_sop_dir(self) -> None:
        """Raise a one-line ConfigError when sop_dir is not a folder (run from the wrong place)."""
        if self.sop_dir.is_dir():
            return
        where = "" if self.sop_dir.is_absolute() else f", relative to the working directory {Path.cwd()}"
        raise ConfigError(f"sop folder not found: {self.sop_dir.absolute()} ([playbook] sop_dir = "
                          f"{str(self.sop_dir)!r}{where}): run scrm from the project folder or set [playbook] sop_dir")


class LogSettings(Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["json", "text"] = "json"
    # Customers' ids in log fields: "mask" writes pseudonyms (the message trail export's), "show"
    # the ids themselves (a bank that allows it, or a developer's machine).
    personal_data: Literal["mask", "show"] = "mask"


class RetrySettings(Section):
    """Shared by the inbox and the outbox: how often to try, how long to wait, lease length."""

    max_attempts: int = Field(8, ge=1)
    backoff_base_s: float = Field(2.0, gt=0)
    backoff_max_s: float = Field(600.0, gt=0)
    lease_s: float = Field(60.0, gt=0)


class InboxSettings(RetrySettings):
    batch_size: int = Field(64, ge=1)
    # Events handled at once (their WeCom reads overlap); one relation's or chat's stay in order.
    concurrency: int = Field(16, ge=1)
    # Group-commit writer: flush after this many rows or this long, whichever first.
    writer_max_batch: int = Field(512, ge=1)
    writer_max_delay_s: float = Field(0.002, ge=0)


class OutboxSettings(RetrySettings):
    batch_size: int = Field(32, ge=1)
    # Calls in flight per worker: at 150 ms a call, 32 keep up with WeCom's 10,000 a minute.
    concurrency: int = Field(32, ge=1)
    # How long to wait before asking WeCom what happened to an `unknown` action.
    reconcile_after_s: float = Field(30.0, ge=0)
    # While other calls are in flight, an outcome waits up to this long (or until batch_size
    # outcomes wait) to share their commit: at WeCom's pace calls return one by one, and a
    # commit per call was a third of the outbox's CPU. The call itself has gone out already.
    record_linger_s: float = Field(0.05, ge=0)


class SchedulerSettings(Section):
    tick_s: float = Field(30.0, gt=0)
    lease_s: float = Field(120.0, gt=0)


class LivenessSettings(Section):
    """The registry of live instances: how often each beats, when a silent one counts as dead.

    A dead instance's claims (inbox rows, outbox actions, scheduler jobs) are released at once,
    by a peer or by the restarted process, instead of waiting out their leases: a welcome code
    lives 20 s. While alive, each beat renews this instance's leases.
    """

    heartbeat_s: float = Field(1.0, gt=0)
    # A few missed beats, not one: a busy database may delay a beat.
    dead_after_s: float = Field(5.0, gt=0)

    @model_validator(mode="after")
    def _dead_after_beats(self) -> LivenessSettings:
        if self.dead_after_s < 2 * self.heartbeat_s:
            raise ValueError("dead_after_s must be at least twice heartbeat_s")
        return self


class Settings(BaseSettings):
    """The whole configuration; each section is validated on its own schema.

    These are the kernel's sections; each feature adds its own (``Feature.settings``, named after
    the feature) through :func:`load_settings`, and reads it with :func:`section`.
    """

    model_config = SettingsConfigDict(
        env_prefix="SCRM_",
        env_nested_delimiter="__",
        extra="forbid",
        case_sensitive=False,
    )

    server: ServerSettings = Field(default_factory=ServerSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    wecom: WeComSettings = Field(default_factory=WeComSettings)
    playbook: PlaybookSettings = Field(default_factory=PlaybookSettings)
    log: LogSettings = Field(default_factory=LogSettings)
    inbox: InboxSettings = Field(default_factory=InboxSettings)
    outbox: OutboxSettings = Field(default_factory=OutboxSettings)
    scheduler: SchedulerSettings = Field(default_factory=SchedulerSettings)
    liveness: LivenessSettings = Field(default_factory=LivenessSettings)

    _toml_file: Path | None = None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if _TOML_PATH is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=_TOML_PATH))
        return tuple(sources)


class ConfigError(Exception):
    """Configuration is invalid; the message names every bad key and why."""


# pydantic-settings reads the TOML path from a class-level hook; set only inside load_settings.
_TOML_PATH: Path | None = None


def _format_errors(exc: ValidationError, origin: str) -> str:
    lines = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"])
        env = "SCRM_" + "__".join(str(p).upper() for p in err["loc"])
        # Our own validators' messages read as sentences; pydantic prefixes them "Value error, ".
        msg = err["ctx"]["error"] if err["type"] == "value_error" and "error" in err.get("ctx", {}) else err["msg"]
        lines.append(f"{origin}: {key} (env {env}): {msg}")
    return "\n".join(lines)


S = TypeVar("S", bound=Section)


@functools.cache
def _with_sections(sections: tuple[tuple[str, type[Section]], ...]) -> type[Settings]:
    """``Settings`` plus the features' sections (one class per distinct set, made once)."""
    if not sections:
        return Settings
    fields: dict[str, Any] = {name: (model, Field(default_factory=model)) for name, model in sections}
    return create_model("Settings", __base__=Settings, **fields)


def section(settings: Settings, name: str, model: type[S]) -> S:
    """The feature section ``[name]`` of ``settings``, typed (refused when it was not loaded)."""
    value = getattr(settings, name, None)
    if not isinstance(value, model):
        raise ConfigError(f"[{name}] is not part of these settings (load them with the feature's section)")
    return value


def load_settings(path: str | Path | None = None, *, sections: Mapping[str, type[Section]] | None = None,
                  **overrides: Any) -> Settings:
    """Load and validate settings.

    ``path`` wins, then ``$SCRM_CONFIG``, then ``./scrm.toml`` if it exists. Environment
    variables override the file; ``overrides`` (used by tests and ``--sandbox``) override both.
    ``sections``: the composed features' own sections by name (``scrm.main.SECTIONS``).
    """
    global _TOML_PATH
    chosen = path or os.environ.get(CONFIG_ENV_VAR)
    if chosen is None and Path(DEFAULT_CONFIG_FILE).exists():
        chosen = DEFAULT_CONFIG_FILE
    toml_path = Path(chosen) if chosen else None
    if toml_path is not None and not toml_path.is_file():
        raise ConfigError(f"config file not found: {toml_path}")
    origin = str(toml_path) if toml_path else "environment"
    _TOML_PATH = toml_path
    try:
        return _with_sections(tuple(sorted((sections or {}).items())))(**overrides)
    except ValidationError as exc:
        raise ConfigError(_format_errors(exc, origin)) from None
    except ValueError as exc:  # TOML syntax errors surface as ValueError subclasses
        raise ConfigError(f"{origin}: {exc}") from None
    finally:
        _TOML_PATH = None


def masked_dump(settings: Settings) -> dict[str, Any]:
    """Settings as plain data with every secret masked (for `scrm config show`).

    ``SecretStr`` fields dump as ``**********``; plain strings may still carry a password: a URL's
    userinfo (``postgresql+asyncpg://scrm:***@db/scrm``) or a ``password=``-like parameter.
    """
    # The password runs from the first ':' after the user to the next '@', whatever it holds:
    # SQLAlchemy parses database URLs the same way, so nothing it would use as a password shows.
    userinfo = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*://[^:/@?#]*):[^@]*@")
    param = re.compile(r"((?:^|[?&;\s])(?:password|passwd|pwd|secret|token|access_token|key|api_key|sig)=)[^&#;\s]*",
                       re.IGNORECASE)

    def mask(value: Any) -> Any:
        if isinstance(value, str):
            return param.sub(r"\1***", userinfo.sub(r"\1:***@", value))
        if isinstance(value, dict):
            return {k: mask(v) for k, v in value.items()}
        if isinstance(value, list):
            return [mask(v) for v in value]
        return value

    data: dict[str, Any] = mask(settings.model_dump(mode="json"))
    return data
