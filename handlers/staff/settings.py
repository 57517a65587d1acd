"""``[staff]``: when the nightly directory sync runs."""

from __future__ import annotations

from pydantic import field_validator

from scrm.kernel.config import Section, Settings, check_cron, section


class StaffSettings(Section):
    # Nightly full sync of members and departments from WeCom (cron, playbook time zone);
    # "" turns it off (a bank whose app may not read the address book imports the HR file).
    nightly_cron: str = "10 2 * * *"

    @field_validator("nightly_cron")
    @classmethod
    def _cron(cls, v: str) -> str:
        return check_cron(v)


def staff_settings(settings: Settings) -> StaffSettings:
    """The ``[staff]`` section of ``settings``."""
    return section(settings, "staff", StaffSettings)
