"""CRM reactions: tag sync on CRM changes and nightly, identity linking, tag write-back.

- :class:`CrmChanged` (a CRM push, import or binding): incremental sync of those customers.
- :class:`CrmNightly` (scheduler, or a CRM-owned tag renamed/deleted in WeCom): reconciliation, one
  chunk per event; the next chunk is a new event, so a crash resumes where it stopped. A chunk
  waits (as a one-off scheduler job) while the outbox holds enough sync calls already.
- contact added: link waiting CRM rows by unionid, then sync the new relation.
- contact edited by a manager: report manager-owned tag changes to the CRM webhook.

WeCom reads (creating missing tags) happen before the first write of the transaction.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.contacts.api import Customer, added_contact, record_contact
from handlers.crm import backlog, discover, identity, store, writeback
from handlers.crm.events import CrmChanged, CrmKeyEvent, CrmNightly
from handlers.crm.jobs import MISFIRE_GRACE_S
from handlers.crm.models import Binding
from handlers.crm.records import INTERACTION_KINDS
from handlers.crm.settings import crm_settings
from handlers.crm.sync import Scope, apply_chunk, load_index, plan_chunk, summarize, sync_scope
from handlers.tags.api import Tag, TagGroup
from scrm.adapters.db.engine import table_of
from scrm.adapters.wecom import events as ev
from scrm.adapters.wecom.api import WeComClient
from scrm.kernel.clock import Clock
from scrm.kernel.config import Settings
from scrm.kernel.dispatch import Router
from scrm.kernel.inbox import Inbox
from scrm.kernel.outbox import Outbox
from scrm.kernel.scheduler import Scheduler, TriggerSpec
from scrm.playbook import Playbook

router = Router("crm")
WAIT_JOB = "crm.nightly.wait"  # one-off job: a reconciliation chunk deferred while the outbox is full
log = logging.getLogger("handlers.crm")


@router.on(CrmChanged)
async def on_changed(event: CrmChanged, session: AsyncSession, wecom: WeComClient, outbox: Outbox,
                     playbook: Playbook, clock: Clock, settings: Settings) -> None:
    """Incremental sync of the changed customers' relations."""
    crm_ids = event.crm_ids
    infos = await discover.read_unmirrored(session, wecom, crm_ids)
    index = await load_index(session, playbook.tag_groups, wecom=wecom)
    await discover.write_contacts(session, infos, clock.now(), await _crm_tag_ids(session, playbook))
    scope = Scope(crm_ids=crm_ids)
    report = await sync_scope(session, outbox, playbook.tag_groups, index, scope,
                              event.generation, clock.now(), crm_settings(settings).sync_chunk)
    log.info("crm tag sync (incremental)", extra={"scanned": report.scanned, "calls": report.calls})


@router.on(CrmKeyEvent)
async def on_interaction(event: CrmKeyEvent, session: AsyncSession, clock: Clock) -> None:
    """A call or branch visit the CRM reports is contact between the customer and their manager
    (``payload.userid``; without it, every active manager of the customer), as of the event's
    own time (never later than now: a future date must not silence the no-contact reminder)."""
    if event.event_kind not in INTERACTION_KINDS:
        return
    ext = event.external_userid or await session.scalar(
        select(Binding.external_userid).where(Binding.crm_id == event.crm_id))
    ext = ext or await session.scalar(select(Customer.external_userid).where(Customer.crm_id == event.crm_id))
    if not ext:
        log.info("crm interaction: no WeCom contact bound", extra={"event_id": event.event_id})
        return
    userid = str(event.details.get("userid") or "").strip() or None
    await record_contact(session, ext, min(event.occurred_at.astimezone(UTC), clock.now()), userid=userid)


@router.on(CrmNightly)
async def on_nightly(event: CrmNightly, session: AsyncSession, wecom: WeComClient, outbox: Outbox,
                     inbox: Inbox, scheduler: Scheduler, playbook: Playbook, clock: Clock,
                     settings: Settings) -> None:
    """One chunk of the reconciliation; queues the next chunk as its own event.

    While the outbox already holds a couple of minutes of sync calls, the chunk waits instead:
    it comes back as a one-off scheduler job when the queue should be half gone (see
    :mod:`handlers.crm.backlog`).
    """
    generation = event.generation or "n" + event.at.strftime("%Y%m%d%H%M")
    after = event.after
    cap = backlog.queue_cap(settings.wecom, crm_settings(settings).sync_chunk)
    queued = await backlog.queued_calls(session)
    if queued >= cap:
        at = clock.now() + timedelta(seconds=backlog.resume_after_s(queued, cap, settings.wecom))
        await scheduler.put_job(session, f"{WAIT_JOB}:{generation}", CrmNightly, TriggerSpec(type="date", at=at),
                                payload={"generation": generation, "after": after},
                                misfire_grace_s=MISFIRE_GRACE_S)
        log.info("crm tag sync (nightly) waits for the outbox", extra={"after": after, "queued": queued})
        return
    index = await load_index(session, playbook.tag_groups, wecom=wecom)
    diffs, scanned, cursor = await plan_chunk(session, playbook.tag_groups, index, Scope(), after,
                                              crm_settings(settings).sync_chunk)
    await apply_chunk(session, outbox, diffs, generation, clock.now())
    report = summarize(diffs, index, scanned)
    log.info("crm tag sync (nightly chunk)", extra={"after": after, "scanned": scanned, "calls": report.calls})
    if cursor is not None:
        nxt = CrmNightly(at=event.at, generation=generation, after=cursor)
        await inbox.add_internal(session, nxt, f"nightly:{generation}:{cursor}")


_UNIONID_OF = select(table_of(Customer).c.unionid).where(table_of(Customer).c.external_userid == bindparam("e"))


@router.on(ev.AddExternalContact, ev.AddHalfExternalContact)
async def on_contact_added(event: ev.AddExternalContact | ev.AddHalfExternalContact, session: AsyncSession,
                           inbox: Inbox, playbook: Playbook, clock: Clock, inbox_id: int) -> None:
    """Link waiting CRM rows (by unionid, read by the contacts handler) and sync the new relation.

    The unionid and the relation's tags come from what the contacts handler wrote in this
    transaction when it says (``added_contact``), else from the database."""
    ext, now = event.external_user_id, clock.now()
    added = added_contact(session, inbox_id, event.user_id, ext)
    unionid = added.unionid if added is not None else await session.scalar(_UNIONID_OF, {"e": ext})
    crm_ids = await identity.link_contact(session, ext, unionid, now)
    await store.queue_sync(session, inbox, crm_ids, now, f"contact:{ext}:{inbox_id}")
    # Tags present at the start (channel tags) are not a manager's edit: start the record here.
    crm_tag_ids = await _crm_tag_ids(session, playbook)
    if added is not None:
        current = writeback.without_crm_tags(added.tag_ids, crm_tag_ids)
    else:
        current = await writeback.manager_tags(session, event.user_id, ext, crm_tag_ids)
    await writeback.snapshot(session, event.user_id, ext, current, now)


@router.on(ev.EditExternalContact)
async def on_contact_edited(event: ev.EditExternalContact, session: AsyncSession, outbox: Outbox,
                            playbook: Playbook, settings: Settings, clock: Clock, inbox_id: int) -> None:
    """A manager changed tags in the client: report manager-owned tag changes to the CRM."""
    ext = event.external_user_id
    crm_id = (await identity.crm_ids_of(session, [ext])).get(ext)
    await writeback.report_changes(
        session, outbox, userid=event.user_id, external_userid=ext, crm_id=crm_id,
        crm_tag_ids=await _crm_tag_ids(session, playbook), key=f"crmhook:{event.user_id}:{ext}:{inbox_id}",
        now=clock.now(), enabled=bool(crm_settings(settings).webhook_url))


@router.on(ev.ExternalTagUpdate, ev.ExternalTagDelete)
async def on_tag_changed(event: ev.ExternalTagUpdate | ev.ExternalTagDelete, session: AsyncSession,
                         inbox: Inbox, playbook: Playbook, inbox_id: int) -> None:
    """A CRM-owned tag or group renamed or deleted in WeCom: reconcile (recreate, re-tag)."""
    group_id = event.id if event.tag_type == "tag_group" else await session.scalar(
        select(Tag.group_id).where(Tag.tag_id == event.id))
    name = await session.scalar(select(TagGroup.name).where(TagGroup.group_id == group_id))
    spec = playbook.tag_groups.get(name or "")
    if spec is None or spec.owner != "crm":
        return
    generation = f"t{inbox_id}"
    reconcile = CrmNightly(at=event_time(event), generation=generation, after=0)
    await inbox.add_internal(session, reconcile, f"nightly:{generation}:0")


def event_time(event: ev.BaseEvent) -> datetime:
    return datetime.fromtimestamp(event.create_time, UTC)


async def _crm_tag_ids(session: AsyncSession, playbook: Playbook) -> frozenset[str]:
    crm_names = [g for g, spec in playbook.tag_groups.items() if spec.owner == "crm"]
    if not crm_names:
        return frozenset()
    rows = await session.scalars(select(Tag.tag_id).join(TagGroup, Tag.group_id == TagGroup.group_id)
                                 .where(TagGroup.name.in_(crm_names)))
    return frozenset(rows.all())
