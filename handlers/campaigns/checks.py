"""The campaign files' check as ``scrm sop validate`` runs it (every problem one
``file:line: key: message`` line), with the playbook the service would load."""

from __future__ import annotations

from scrm.cli_support import UserError, load_playbook_or_fail
from scrm.kernel.config import Settings

from .campaign import check_campaigns


def check_files(settings: Settings) -> list[str]:
    """Every problem of ``sop/campaigns/*.yaml``; none to report while the playbook itself does not
    load (its own errors come first: a campaign is checked against the materials and tags)."""
    try:
        pb = load_playbook_or_fail(settings)
    except UserError:
        return []
    return [str(issue) for issue in check_campaigns(settings.playbook.sop_dir, pb)]
