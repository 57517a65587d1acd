"""Read ``sop/experiments/*.yaml`` and ``sop/campaigns/*.yaml`` into the ``experiment`` and
``campaign`` tables, at start and after each reload (a campaign with variants or a holdout is an
experiment too, on source ``campaign:<name>``).

A broken file never stops the service nor changes what runs: every problem is logged
(``file:line: key: message``; ``scrm experiments validate`` and ``scrm campaign validate`` print
the same) and what was last stored stays in force, as a refused playbook reload keeps the last
good playbook. Experiments and campaigns are stored together or not at all, since a campaign's
experiment is one of the experiments.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from scrm.playbook.issues import PlaybookError

from .book import sync
from .campaign import campaign_of, load_campaign_files
from .campaign_book import sync_campaigns
from .experiments import load_experiments

if TYPE_CHECKING:
    from scrm.kernel.service import Runtime

log = logging.getLogger("handlers.campaigns")


async def sync_experiments(runtime: Runtime) -> list[str]:
    """The active experiments' and campaigns' names after the sync (the last stored ones when the
    files are broken)."""
    pb = runtime.playbook.current
    if pb is None:
        return []
    sop_dir = runtime.settings.playbook.sop_dir
    try:
        experiments = list(load_experiments(sop_dir, pb))
        campaigns = load_campaign_files(sop_dir, pb)
    except PlaybookError as exc:
        for issue in exc.errors:
            log.error("experiments/campaigns: %s (what was stored before stays in force)", issue)
        return []
    taken = {e.name for e in experiments}
    for data, origin in campaigns:
        e = campaign_of(data, origin).experiment
        if e is None or not data.active:
            continue
        if e.name in taken:
            log.error("campaigns: %s: experiment %r is also declared in sop/experiments/ (nothing stored)", origin,
                      e.name)
            return []
        experiments.append(e)
    async with runtime.sessions() as session, session.begin():
        names = await sync(session, experiments, runtime.clock.now())
        return names + await sync_campaigns(session, campaigns, runtime.clock.now())
