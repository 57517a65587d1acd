"""``[compliance]``: how long the message trail keeps its records, and when it purges."""

from __future__ import annotations

import importlib.util
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from scrm.kernel.config import Cron, Section, Settings, section


class ComplianceSettings(Section):
    # Days a trail record is kept, by kind (welcome, mass_send, handover, sop, sidebar …); a kind
    # not named keeps ``retain_days``. Five years by default: what banks keep customer
    # communication for; a regulator's longer rule goes here.
    retain_days: int = Field(1826, ge=1)
    retain_days_by_kind: dict[str, int] = Field(default_factory=dict)
    # When expired records are purged (the playbook's time zone); "" never purges.
    purge_cron: Cron = "30 3 * * *"
    # Conversation review (会话存档): where archived messages come from — "off", "sandbox" (the
    # built-in sandbox's archive API) or "sdk" (WeCom's finance SDK, loaded at run time from
    # the Python module ``archive_sdk_module``; see handlers/compliance/archive/source.py).
    archive_source: Literal["off", "sandbox", "sdk"] = "off"
    archive_sdk_module: str = "wecom_finance_sdk"
    # The corp's RSA private keys (PEM) by public-key version, {1 = "-----BEGIN …", 2 = "…"}:
    # secrets, never logged; a message archived under a version missing here stops the intake.
    archive_private_keys: dict[int, SecretStr] = Field(default_factory=dict)
    # Messages per pull (WeCom allows at most 1000) and the wait when the archive is drained.
    archive_batch: int = Field(1000, ge=1, le=1000)
    archive_poll_s: float = Field(60.0, gt=0)

    @field_validator("archive_private_keys")
    @classmethod
    def _keys_parse(cls, keys: dict[int, SecretStr]) -> dict[int, SecretStr]:
        # Checked at start-up, so a pasted key with a broken line is one line from `scrm`, not a
        # worker failing later; the message names the version, never the key.
        from handlers.compliance.archive.keys import ArchiveKeyError, PrivateKeys

        try:
            PrivateKeys({v: k.get_secret_value() for v, k in keys.items()})
        except ArchiveKeyError as exc:
            raise ValueError(str(exc).replace("[compliance] archive_private_keys.", "version ")) from None
        return keys

    @model_validator(mode="after")
    def _archive_ready(self) -> ComplianceSettings:
        if self.archive_source != "off" and not self.archive_private_keys:
            raise ValueError("archive_source is on but archive_private_keys is empty: add the private key of "
                             "each public-key version in the archive")
        if self.archive_source == "sdk":
            try:
                found = importlib.util.find_spec(self.archive_sdk_module) is not None
            except (ImportError, ValueError):
                found = False
            if not found:
                raise ValueError(f"archive_source = \"sdk\" needs the finance SDK wrapper module "
                                 f"{self.archive_sdk_module!r} (archive_sdk_module), which is not installed")
        return self


def compliance_settings(settings: Settings) -> ComplianceSettings:
    """The ``[compliance]`` section of ``settings``."""
    return section(settings, "compliance", ComplianceSettings)
