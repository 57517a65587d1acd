"""``[staff]``: when the nightly directory sync runs."""

from __future__ import annotations

from scrm.kernel.config import Cron, Section, Settings, section


class StaffSettings(Section):
    # Nightly full sync of members and departments from WeCom (cron, playbook time zone);
    # "" turns it off (a bank whose app may not read the address book imports the HR file).
    nightly_cron: Cron = "10 2 * * *"



def staff_settings(settings: Settings) -> StaffSettings:
    """The ``[staff]`` section of ``settings``."""
    return section(settings, "staff", StaffSettings)
