"""Reactions to radar clicks: interest tags, manager alerts (aggregated), the daily digest.

A :class:`RadarClickEvent` comes from ``GET /r/{token}`` (handlers.radar.http). The click row, the
tags, the alert and the aggregation state commit with the event, so a replay changes nothing.
The timeline entry is written by handlers/timeline.py from the payload's ``subject``.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.contacts.api import Customer, Follow, record_contact
from handlers.radar import alerts, texts
from handlers.radar.events import RadarClickEvent, RadarDigest
from handlers.radar.models import RadarClick
from handlers.radar.settings import radar_settings
from handlers.tags import api as tagcatalog
from handlers.tags.api import FollowTag
from scrm.adapters.db.engine import dialect_of, insert_ignore, table_of
from scrm.adapters.wecom.api import WeComClient
from scrm.adapters.wecom.errors import WeComError
from scrm.kernel.clock import Clock
from scrm.kernel.config import Settings
from scrm.kernel.dispatch import Router
from scrm.kernel.models import DueJob
from scrm.kernel.notify import tell_member
from scrm.kernel.outbox import Outbox
from scrm.kernel.scheduler import Scheduler, TriggerSpec
from scrm.playbook import Playbook
from scrm.playbook.quiet import quiet_until

log = logging.getLogger("handlers.radar")

router = Router("radar")

DIGEST_JOB = "radar:digest"
MARK_TAG = "externalcontact/mark_tag"


async def _follower(session: AsyncSession, wecom: WeComClient, sender: str, customer: str) -> str | None:
    """Who tags the customer: the sender when they follow them, else another follower.

    The local mirror answers first; without it (not synced yet) WeCom does. None: nobody in
    the corp follows this customer any more, so there is nobody to tag them through.
    """
    local = (await session.scalars(select(Follow.userid).where(
        Follow.external_userid == customer, Follow.status == "active"))).all()
    followers = list(local)
    if not followers:
        try:
            info = await wecom.get_external_contact(customer)
        except WeComError as exc:
            log.info("radar: customer has no follower to tag through", extra={"errcode": exc.errcode})
            return None
        followers = [f.userid for f in info.follow_user]
    if sender in followers:
        return sender
    return followers[0] if followers else None


def _title(playbook: Playbook, material: str) -> str:
    m = playbook.materials.get(material)
    if m is None:
        return material
    return m.title or (m.link.title if m.link is not None else material)


async def _ensure_digest_job(session: AsyncSession, scheduler: Scheduler, settings: Settings) -> None:
    """Create the daily digest job the first time it has something to say (never moved after)."""
    exists = await session.scalar(select(DueJob.id).where(DueJob.job_key == DIGEST_JOB))
    if exists is None:
        cron = radar_settings(settings).digest_cron
        trigger = TriggerSpec(type="cron", expr=cron, timezone=settings.playbook.timezone)
        await scheduler.put_job(session, DIGEST_JOB, RadarDigest, trigger)


@router.on(RadarClickEvent)
async def on_click(event: RadarClickEvent, session: AsyncSession, wecom: WeComClient, outbox: Outbox,
                   playbook: Playbook, settings: Settings, scheduler: Scheduler, clock: Clock,
                   inbox_id: int) -> None:
    """Count the open; tag the customer with the material's interests; alert the manager (in
    quiet hours the alert waits for their end and says when the customer looked)."""
    material, sender, customer = event.material, event.sender, event.customer
    spec = playbook.materials.get(material)
    names = list(spec.interest_tags) if spec is not None and customer else []
    # -- WeCom reads (and tag creation) before any write: SQLite holds its lock until commit.
    tag_ids = await tagcatalog.ensure(session, wecom, names) if names else {}
    userid = await _follower(session, wecom, sender, customer) if tag_ids and customer else None
    # -- writes
    await session.execute(insert(RadarClick).values(
        token_id=event.token_id, material_id=material, sender=sender,
        external_userid=customer, viewer_userid=None, occurrence=event.occurrence, at=event.at))
    if not customer:
        return  # anonymous: counted as an open, nobody to tag or name
    if sender:
        # The customer opened what their manager sent them: contact, as of the click.
        await record_contact(session, customer, event.at, userid=sender)
    if tag_ids and userid:
        have = set((await session.scalars(select(FollowTag.tag_id).where(
            FollowTag.userid == userid, FollowTag.external_userid == customer))).all())
        to_add = [t for t in tagcatalog.resolve_ids(tag_ids, names) if t not in have]
        if to_add:
            body = {"userid": userid, "external_userid": customer, "add_tag": to_add}
            await outbox.add(session, f"radar:tag:{userid}:{customer}:{material}", MARK_TAG, body)
            # WeCom sends no callback for API tagging: mirror it so the next click adds nothing.
            await session.execute(insert_ignore(dialect_of(session), table_of(FollowTag),
                                                ["userid", "external_userid", "tag_id"]), [
                {"userid": userid, "external_userid": customer, "tag_id": t, "added_at": event.at}
                for t in to_add])
    if not sender:
        return
    window = timedelta(seconds=radar_settings(settings).alert_window_s)
    if await alerts.should_alert(session, sender, customer, material, event.at, window):
        times = await alerts.opens_today(session, customer, material, event.at, settings.playbook.timezone)
        name = await session.scalar(select(Customer.name).where(Customer.external_userid == customer))
        held = quiet_until(playbook, clock.now())
        seen = f"{event.at.astimezone(ZoneInfo(settings.playbook.timezone)):%H:%M}" if held else None
        await tell_member(session, outbox, settings, key=f"radar:alert:{inbox_id}", userid=sender,
                          text=texts.alert(name or customer, _title(playbook, material), times, seen_at=seen),
                          not_before=held)
    else:
        await _ensure_digest_job(session, scheduler, settings)


@router.on(RadarDigest)
async def on_digest(event: RadarDigest, session: AsyncSession, outbox: Outbox, playbook: Playbook,
                    settings: Settings, clock: Clock) -> None:
    """Once a day: each manager gets one message for the clicks that had no alert of their own
    (held until the quiet hours end when the digest runs inside them)."""
    per_sender = await alerts.take_digest(session)
    if not per_sender:
        return
    customers = {c for lines in per_sender.values() for c, _, _ in lines}
    names = dict((await session.execute(select(Customer.external_userid, Customer.name)
                                        .where(Customer.external_userid.in_(customers)))).all())
    stamp = event.at.isoformat()
    held = quiet_until(playbook, clock.now())
    for sender, lines in per_sender.items():
        text = texts.digest([(names.get(c) or c, _title(playbook, m), n) for c, m, n in lines])
        await tell_member(session, outbox, settings, key=f"radar:digest:{sender}:{stamp}", userid=sender, text=text,
                          not_before=held)
    log.info("radar digest queued", extra={"managers": len(per_sender), "at": clock.now().isoformat()})
