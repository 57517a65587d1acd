"""Points and growth another feature grants (a referral reward), posted to the same ledger.

The amounts are the granting feature's (its own YAML), not a behaviour of sop/membership.yaml:
each award is posted as a behaviour of its own name, so it shows in the ledger and the report
like any earning, with no daily or monthly cap (the granting feature keeps its own caps). Like
every entry it is written once per (source, member): granting again after a crash or a replay
adds nothing. Levels move up as for any earning; points lapse by the membership rules.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.crm.api import EVENT_KINDS
from scrm.kernel.inbox import Inbox

from .ledger import Earning, Posted, post
from .rules import Behaviour, load_current


@dataclass(frozen=True)
class Award:
    """``points`` and ``growth`` for ``external_userid``, once per ``source``; ``name`` (≤32
    characters, e.g. ``referral_friend``) and ``label`` say why in the ledger."""

    external_userid: str
    name: str
    label: str
    points: int
    growth: int
    source: str
    at: datetime


async def grant(session: AsyncSession, sop_dir: Path, awards: Sequence[Award], *, tz: ZoneInfo, now: datetime,
                inbox: Inbox | None) -> Posted:
    """Post ``awards`` in the caller's transaction (see the module's docstring); a broken
    sop/membership.yaml raises :class:`~scrm.playbook.issues.PlaybookError`."""
    wanted = [a for a in awards if a.points or a.growth]
    if not wanted:
        return Posted()
    rules = load_current(sop_dir, EVENT_KINDS)
    kinds: dict[str, Behaviour] = {}
    for a in wanted:
        kinds.setdefault(a.name, Behaviour(a.name[:32], a.label, f"award.{a.name}", a.points, a.growth))
    # Award behaviours first: a name the YAML also uses keeps the amounts given here.
    rules = dataclasses.replace(rules, behaviours=(*kinds.values(), *rules.behaviours))
    return await post(session, rules, [Earning(a.external_userid, a.name[:32], a.source, a.at) for a in wanted],
                      tz=tz, now=now, inbox=inbox)
