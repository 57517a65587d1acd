"""``[backfill]``: whether the first start adopts the corp on its own, and how it retries."""

from __future__ import annotations

from scrm.kernel.config import Section, Settings, section


class BackfillSettings(Section):
    # The first start against a corp backfills it (once: recorded in backfill_run); off, the
    # bank runs `scrm backfill` itself.
    on_first_start: bool = True
    # After a failure (WeCom unreachable, an error), the first-start backfill tries again this
    # much later, from where it stopped.
    retry_s: float = 60.0
    # How long a run's claim lasts without a page written (renewed with every page).
    lease_s: float = 120.0


def backfill_settings(settings: Settings) -> BackfillSettings:
    """The ``[backfill]`` section of ``settings``."""
    return section(settings, "backfill", BackfillSettings)
