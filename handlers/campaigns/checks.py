"""The campaign files' check as ``scrm sop validate`` runs it (every problem one
``file:line: key: message`` line), against the playbook validate loaded."""

from __future__ import annotations

from scrm.kernel.config import Settings
from scrm.playbook import Playbook

from .campaign import check_campaigns


def check_files(settings: Settings, playbook: Playbook | None) -> list[str]:
    """Every problem of ``sop/campaigns/*.yaml``; none to report while the playbook itself does not
    load (its own errors come first: a campaign is checked against the materials and tags)."""
    if playbook is None:
        return []
    return [str(issue) for issue in check_campaigns(settings.playbook.sop_dir, playbook)]
