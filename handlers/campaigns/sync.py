"""Read ``sop/experiments/*.yaml`` into the ``experiment`` table, at start and after each reload.

A broken file never stops the service nor changes what runs: every problem is logged
(``file:line: key: message``; ``scrm experiments validate`` prints the same) and the experiments
last stored stay in force, as a refused playbook reload keeps the last good playbook.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from scrm.playbook.issues import PlaybookError

from .book import sync
from .experiments import load_experiments

if TYPE_CHECKING:
    from scrm.kernel.service import Runtime

log = logging.getLogger("handlers.campaigns")


async def sync_experiments(runtime: Runtime) -> list[str]:
    """The active experiments' names after the sync (the last stored ones when the files are broken)."""
    pb = runtime.playbook.current
    if pb is None:
        return []
    try:
        experiments = load_experiments(runtime.settings.playbook.sop_dir, pb)
    except PlaybookError as exc:
        for issue in exc.errors:
            log.error("experiments: %s (the experiments stored before stay in force)", issue)
        return []
    async with runtime.sessions() as session, session.begin():
        return await sync(session, experiments, runtime.clock.now())
