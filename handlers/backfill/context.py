"""What every stage of a backfill runs with, given once when the run is built."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from scrm.adapters.wecom.api import WeComClient
from scrm.kernel.clock import Clock
from scrm.kernel.inbox import Inbox
from scrm.playbook import Playbook

# WeCom's largest page of batch/get_by_user (and our page of groupchat/list, list_contact_way):
# the fewest calls, so the run is as short as the per-API limit allows.
PAGE_LIMIT = 100
# Members per batch/get_by_user or groupchat/list owner filter (WeCom: at most 100).
MEMBERS_PER_CALL = 100


@dataclass(frozen=True)
class PageDone:
    """One page committed: for progress lines (and tests that stop a run after page k)."""

    stage: str
    pages: int  # pages of this stage committed so far, this one included
    items: int
    skipped: int


@dataclass
class Context:
    """The collaborators of one run. ``on_page`` is told of every committed page."""

    sessions: async_sessionmaker[AsyncSession]
    wecom: WeComClient
    clock: Clock
    inbox: Inbox
    corp_id: str
    owner: str
    playbook: Playbook | None = None
    lease_s: float = 120.0
    page_limit: int = PAGE_LIMIT
    on_page: Callable[[PageDone], Any] | None = None
    # Ids of the CRM-owned tags (the tag map's ``owner: crm`` groups), read once the tag library is in.
    crm_tag_ids: frozenset[str] = field(default_factory=frozenset)
    # When our lease was last renewed (clock.monotonic()); renewed again once a quarter of it passed.
    renewed_at: float | None = None

    def renewal_due(self) -> bool:
        return self.renewed_at is None or self.clock.monotonic() - self.renewed_at >= self.lease_s / 4
