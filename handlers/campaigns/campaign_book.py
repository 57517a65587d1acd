"""The campaigns in force, as the SOP engine sees them: synced from ``sop/campaigns/*.yaml`` into
the ``campaign`` table at start and after every reload (with their experiments into
``experiment``), read back by each slot's planner; and :class:`CampaignTouches`, which records
what each channel did for each customer when the executor writes the slot."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, time
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.groups.api import GroupMember
from scrm.adapters.db.engine import dialect_of, insert_ignore, table_of, upsert

from .campaign import SOURCE_PREFIX, Campaign, CampaignFile, Channel, from_spec, to_spec
from .models import Campaign as CampaignRow
from .models import CampaignTouch

SENT, HOLDOUT_TOUCH, SKIPPED = "sent", "holdout", "skipped"


class CampaignBook:
    """Campaigns by name, and which channels fall on a given day and time."""

    def __init__(self, campaigns: Iterable[Campaign] = ()) -> None:
        self.by_name = {c.name: c for c in campaigns}

    def __bool__(self) -> bool:
        return bool(self.by_name)

    def due(self, day: date, at: time) -> list[tuple[Campaign, Channel]]:
        """The (campaign, channel) pairs that run at ``at`` on ``day``, by campaign then channel."""
        return [(c, ch) for _, c in sorted(self.by_name.items()) for ch in c.channels if ch.day == day and ch.at == at]

    def slot_times(self) -> set[time]:
        """Every HH:MM a campaign channel runs at (the SOP engine's daily slot jobs)."""
        return {ch.at for c in self.by_name.values() for ch in c.channels}


async def campaigns_in_force(session: AsyncSession) -> CampaignBook:
    rows = (await session.scalars(select(CampaignRow).where(CampaignRow.active.is_(True)))).all()
    return CampaignBook(from_spec(r.name, r.spec, r.origin) for r in rows)


async def sync_campaigns(session: AsyncSession, files: Iterable[tuple[CampaignFile, str]], now: datetime) -> list[str]:
    """Store the campaigns read from the files (a removed or ``active: false`` one stays for the
    report, inactive). Returns the active names."""
    rows: list[dict[str, Any]] = [
        {"name": f.campaign, "spec": to_spec(f), "origin": origin[:256], "active": True, "updated_at": now}
        for f, origin in files if f.active]
    names = [str(r["name"]) for r in rows]
    if rows:
        stmt = upsert(dialect_of(session), table_of(CampaignRow), ["name"], ["spec", "origin", "active", "updated_at"])
        await session.execute(stmt, rows)
    await session.execute(update(CampaignRow).where(CampaignRow.name.not_in(names), CampaignRow.active.is_(True))
                          .values(active=False, updated_at=now))
    return names


def campaign_of_source(source: str) -> str | None:
    """``campaign:<name>`` → name; None for any other SOP source."""
    return source.removeprefix(SOURCE_PREFIX) if source.startswith(SOURCE_PREFIX) else None


class CampaignTouches:
    """Records, in the caller's transaction, what a campaign channel did for a customer (the first
    record of a (campaign, channel, customer) stays: a replay or a second instance adds nothing).

    A group channel's target is a chat: its touch is recorded for each customer in the chat at
    that moment (the external members who have not left), so the funnel counts people.

    Rows are written in batches (a slot of a large campaign records tens of thousands): call
    :meth:`flush` before the transaction commits (the SOP executor's ``run`` does).
    """

    BATCH = 1000

    def __init__(self, session: AsyncSession, now: datetime) -> None:
        self.session = session
        self.now = now
        self._book: CampaignBook | None = None
        self._pending: dict[tuple[str, str, str], dict[str, Any]] = {}

    async def record(self, source: str, channel: str, target: str, outcome: str, *, manager: str = "",
                     reason: str | None = None) -> None:
        name = campaign_of_source(source)
        if name is None:
            return
        customers = await self._members(target) if await self._is_group(name, channel) else [target]
        for c in customers:  # the first record of a run stays, as the first stored one does
            self._pending.setdefault((name, channel[:64], c), {
                "campaign": name, "channel": channel[:64], "customer": c, "manager": manager[:64],
                "outcome": outcome, "reason": reason[:256] if reason else None, "at": self.now})
        if len(self._pending) >= self.BATCH:
            await self.flush()

    async def flush(self) -> None:
        rows, self._pending = list(self._pending.values()), {}
        if rows:
            await self.session.execute(insert_ignore(dialect_of(self.session), table_of(CampaignTouch),
                                                     ["campaign", "channel", "customer"]), rows)

    async def _is_group(self, name: str, channel: str) -> bool:
        if self._book is None:
            self._book = await campaigns_in_force(self.session)
        campaign = self._book.by_name.get(name)
        return campaign is not None and any(ch.key == channel and ch.kind == "group" for ch in campaign.channels)

    async def _members(self, chat_id: str) -> list[str]:
        return list(await self.session.scalars(
            select(GroupMember.member_id).where(GroupMember.chat_id == chat_id, GroupMember.type == 2,
                                                GroupMember.left_at.is_(None)).order_by(GroupMember.member_id)))
