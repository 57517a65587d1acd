"""Contact lifecycle: a new customer (welcome within WeCom's 20-second window, channel tags),
edits, deletions in both directions, and failed transfers.

Every handler does its WeCom reads (externalcontact/get, tag catalog, media upload) before
its first write: SQLite holds the write lock from the first write until commit. Every WeCom
write goes through the outbox with an idempotency key, so duplicate deliveries (stored once by
the inbox) and replays (same inbox id, same keys) send nothing twice.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.compliance.api import trail_about
from handlers.contacts import follows, texts
from handlers.contacts.added import remember
from handlers.contacts.events import ChannelTagsDue
from handlers.contacts.models import Follow
from handlers.contacts.welcome import (
    Welcome,
    WelcomeError,
    context_for,
    welcome_body,
    welcome_deadline,
    welcome_material,
    welcome_tracking,
)
from handlers.tags import api as tagcatalog
from handlers.tags.api import FollowTag
from handlers.timeline.api import note
from scrm.adapters.wecom import events as ev
from scrm.adapters.wecom.api import WeComClient
from scrm.adapters.wecom.errors import ErrCode, WeComError
from scrm.adapters.wecom.media import MediaResolver
from scrm.adapters.wecom.models import FollowUser, GetExternalContactResponse
from scrm.kernel.clock import Clock
from scrm.kernel.config import Settings
from scrm.kernel.dispatch import Router
from scrm.kernel.inbox import Inbox
from scrm.kernel.notify import tell_member
from scrm.kernel.outbox import PRIORITY_WELCOME, Outbox, QueuedCall
from scrm.playbook import Playbook
from scrm.playbook.quiet import local_day, quiet_until

router = Router("contacts")
log = logging.getLogger("handlers.contacts")

SEND_WELCOME = "externalcontact/send_welcome_msg"
MARK_TAG = "externalcontact/mark_tag"
_GONE = (ErrCode.NOT_EXTERNAL_CONTACT, ErrCode.INVALID_EXTERNAL_USERID)
_UNNAMED: set[str] = set()


def _at(event: ev.BaseEvent) -> datetime:
    return datetime.fromtimestamp(event.create_time, UTC)


async def _read_contact(wecom: WeComClient, external_userid: str) -> GetExternalContactResponse | None:
    """externalcontact/get with every follow_user page; None when the relation is already gone."""
    try:
        return await wecom.get_external_contact(external_userid)
    except WeComError as exc:
        if exc.errcode in _GONE:
            return None
        raise


def _follow_of(info: GetExternalContactResponse | None, userid: str) -> FollowUser | None:
    if info is None:
        return None
    return next((f for f in info.follow_user if f.userid == userid), None)


async def _mark_tags(session: AsyncSession, queue: list[QueuedCall], userid: str, external_userid: str,
                     tag_ids: list[str], already: set[str], key: str, now: datetime) -> list[str]:
    """Queue mark_tag (onto ``queue``, for the caller's ``Outbox.add_many``) for the tags the
    relation lacks; mirror them locally (WeCom sends no callback for API changes). Returns the
    ids queued."""
    to_add = [t for t in dict.fromkeys(tag_ids) if t not in already]
    if to_add:
        queue.append(QueuedCall(key, MARK_TAG, {"userid": userid, "external_userid": external_userid,
                                                "add_tag": to_add}))
        await follows.add_follow_tags(session, userid, external_userid, to_add, now)
    return to_add


async def _build_welcome(event: ev.AddExternalContact | ev.AddHalfExternalContact, info: GetExternalContactResponse,
                         follow: FollowUser, session: AsyncSession, playbook: Playbook, clock: Clock,
                         media: MediaResolver, settings: Settings) -> Welcome:
    today = local_day(playbook, clock.now())
    material = welcome_material(playbook, event.state, today)
    manager = await follows.member_name(session, event.user_id)
    if manager is None:
        if event.user_id not in _UNNAMED:  # once per member and process: a burst must not flood the log
            _UNNAMED.add(event.user_id)
            log.warning("member name unknown (sync or import the staff directory); welcome says %s",
                        texts.UNNAMED_MANAGER, extra={"userid": event.user_id})
        manager = texts.UNNAMED_MANAGER
    context = context_for(info.external_contact.name, follow.remark, manager, today)
    # A link goes out as a radar link minted for this customer and manager (opens are tracked).
    tracking = welcome_tracking(settings, event.user_id, event.external_user_id, event.state, event.welcome_code)
    return await welcome_body(event.welcome_code, material, context, playbook, media, tracking)


@router.on(ev.AddExternalContact, ev.AddHalfExternalContact)
async def on_add(event: ev.AddExternalContact | ev.AddHalfExternalContact, session: AsyncSession,
                 wecom: WeComClient, outbox: Outbox, inbox: Inbox, playbook: Playbook, settings: Settings,
                 clock: Clock, inbox_id: int) -> None:
    """Welcome (priority lane, not after event time + 20 s), mirror, channel tags."""
    userid, ext, at, now = event.user_id, event.external_user_id, _at(event), clock.now()
    # -- WeCom reads, before any write ------------------------------------------------------
    info = await _read_contact(wecom, ext)
    follow = _follow_of(info, userid)
    channel = playbook.channels.get(event.state) if event.state else None
    tag_names = list(channel.tags) if channel is not None and follow is not None else []
    tag_ids = await tagcatalog.lookup(session, tag_names)
    media = MediaResolver(session, wecom, clock, settings.playbook.materials_dir)
    welcome: Welcome | None = None
    problem = ""
    if event.welcome_code:
        if info is None or follow is None:
            problem = "the customer is no longer a contact of this member"
        else:
            try:
                welcome = await _build_welcome(event, info, follow, session, playbook, clock, media, settings)
            except WelcomeError as exc:
                problem = str(exc)
    # -- writes ------------------------------------------------------------------------------
    if info is not None:
        await follows.upsert_customer(session, info.external_contact, now)
    if follow is not None:
        await follows.upsert_follow(session, ext, follow, now)
        await follows.set_follow_tags(session, userid, ext, follows.corp_tag_ids(follow), now)
    else:
        await follows.ensure_follow(session, userid, ext, state=event.state, created_at=at)
    await media.flush()
    # The welcome and the channel's tags are queued with one statement (welcome first).
    calls: list[QueuedCall] = []
    if welcome is not None and info is not None:
        await _queue_welcome(session, calls, event, welcome, info.external_contact.name, inbox_id, at)
    elif problem:
        await _welcome_failed(session, outbox, settings, event, info, problem, inbox_id, at, notify=follow is not None,
                              not_before=quiet_until(playbook, now))
    channel_tagged: list[str] = []
    if follow is not None and tag_names:
        channel_tagged = await _channel_tags(session, calls, inbox, event, follow, tag_names, tag_ids, inbox_id,
                                             at, now)
    await outbox.add_many(session, calls)
    if info is not None and follow is not None:  # customer and relation (and its tags) written above
        remember(session, inbox_id, userid, ext, info.external_contact.unionid,
                 [*follows.corp_tag_ids(follow), *channel_tagged])


async def _queue_welcome(session: AsyncSession, queue: list[QueuedCall],
                         event: ev.AddExternalContact | ev.AddHalfExternalContact, welcome: Welcome, customer: str,
                         inbox_id: int, at: datetime) -> None:
    # ``about``: whom to tell if it misses its window anyway (handlers/contacts/missed.py).
    queue.append(QueuedCall(
        f"welcome:{event.welcome_code}", SEND_WELCOME, welcome.body, priority=PRIORITY_WELCOME,
        not_after=welcome_deadline(event.create_time),
        about={"userid": event.user_id, "external_userid": event.external_user_id, "customer": customer,
               "trail": trail_about("welcome", sender=event.user_id, audience=[event.external_user_id],
                                    material=welcome.material,
                                    decisions=["reply to the customer's own add (no quiet hours)"])}))
    await welcome.record_sends(session, at)  # the radar's open rate counts this send
    for reason in welcome.notes:
        log.error("welcome sent without its attachment: %s", reason, extra={"userid": event.user_id})
    if welcome.notes:
        await note(session, inbox_id, "customer", event.external_user_id, at, "welcome.degraded",
                   {"reasons": welcome.notes})


async def _channel_tags(session: AsyncSession, queue: list[QueuedCall], inbox: Inbox,
                        event: ev.AddExternalContact | ev.AddHalfExternalContact, follow: FollowUser,
                        tag_names: list[str], tag_ids: dict[str, str], inbox_id: int, at: datetime,
                        now: datetime) -> list[str]:
    """Tag the new relation with its channel's tags, now when they all exist in the mirror.
    Returns the tag ids added to the relation's mirror now (none when they come later)."""
    userid, ext = event.user_id, event.external_user_id
    if all(n in tag_ids for n in tag_names):
        return await _mark_tags(session, queue, userid, ext, tagcatalog.resolve_ids(tag_ids, tag_names),
                                set(follows.corp_tag_ids(follow)), f"mark_tag:{userid}:{ext}:{inbox_id}", now)
    # Creating tags is a WeCom call that may fail: keep it off the welcome's path, as its own
    # event that retries (and dead-letters, visibly) on its own.
    due = ChannelTagsDue(at=at, userid=userid, external_userid=ext, tags=tuple(tag_names), channel=event.state,
                         subject=("customer", ext))
    await inbox.add_internal(session, due, f"channel_tags:{inbox_id}")
    return []


async def _welcome_failed(session: AsyncSession, outbox: Outbox, settings: Settings,
                          event: ev.AddExternalContact | ev.AddHalfExternalContact,
                          info: GetExternalContactResponse | None, problem: str, inbox_id: int, at: datetime,
                          *, notify: bool, not_before: datetime | None) -> None:
    """Say loudly that no welcome went out, and ask the manager to greet by hand (after the quiet
    hours when it happens inside them)."""
    log.error("welcome not sent: %s", problem, extra={"userid": event.user_id, "state": event.state})
    await note(session, inbox_id, "customer", event.external_user_id, at, "welcome.failed",
               {"userid": event.user_id, "state": event.state, "reason": problem})
    if notify and info is not None:
        await tell_member(session, outbox, settings, key=f"welcome_failed:{event.welcome_code}",
                          userid=event.user_id, text=texts.welcome_failed(info.external_contact.name, problem),
                          not_before=not_before)


@router.on(ChannelTagsDue)
async def on_channel_tags(event: ChannelTagsDue, session: AsyncSession, wecom: WeComClient, outbox: Outbox,
                          clock: Clock, inbox_id: int) -> None:
    """Create the channel's missing tags in WeCom (a direct call: mark_tag needs the ids), then
    tag the relation. Failures raise and retry; the error names the tags."""
    userid, ext, names = event.userid, event.external_userid, list(event.tags)
    ids = await tagcatalog.ensure(session, wecom, names)
    current = await session.scalars(select(FollowTag.tag_id).where(FollowTag.userid == userid,
                                                                    FollowTag.external_userid == ext))
    calls: list[QueuedCall] = []
    await _mark_tags(session, calls, userid, ext, tagcatalog.resolve_ids(ids, names), set(current.all()),
                     f"mark_tag:{userid}:{ext}:{inbox_id}", clock.now())
    await outbox.add_many(session, calls)


@router.on(ev.EditExternalContact)
async def on_edit(event: ev.EditExternalContact, session: AsyncSession, wecom: WeComClient, clock: Clock) -> None:
    """The manager edited remark or tags in the client: refresh the relation from WeCom."""
    info = await _read_contact(wecom, event.external_user_id)
    follow = _follow_of(info, event.user_id)
    if info is None or follow is None:
        log.info("edited relation no longer exists; nothing to refresh")
        return
    now = clock.now()
    await follows.upsert_customer(session, info.external_contact, now)
    await follows.upsert_follow(session, event.external_user_id, follow, now)
    await follows.set_follow_tags(session, event.user_id, event.external_user_id, follows.corp_tag_ids(follow), now)


@router.on(ev.DelFollowUser)
async def on_del_follow_user(event: ev.DelFollowUser, session: AsyncSession, outbox: Outbox, settings: Settings,
                             playbook: Playbook, clock: Clock) -> None:
    """The customer deleted the manager: churn. Mark the relation lost and tell the manager
    (after the quiet hours when it happens inside them)."""
    userid, ext = event.user_id, event.external_user_id
    row = await follows.get_follow(session, userid, ext)
    already_lost = row is not None and row.status == follows.LOST
    state = row.state if row is not None else ""
    name = await follows.customer_name(session, ext)
    await follows.set_status(session, userid, ext, follows.LOST, "del_follow_user", _at(event))
    if already_lost:
        return
    channel = playbook.channels.get(state) if state else None
    await tell_member(session, outbox, settings, key=f"churn:{userid}:{ext}:{event.create_time}", userid=userid,
                      text=texts.churn_notice(name, channel.name if channel else None),
                      not_before=quiet_until(playbook, clock.now()))


@router.on(ev.DelExternalContact)
async def on_del_external_contact(event: ev.DelExternalContact, session: AsyncSession) -> None:
    """The manager deleted the customer; 在职继承 (DELETE_BY_TRANSFER) is a transfer, not churn."""
    transfer = event.source == "DELETE_BY_TRANSFER"
    status = follows.TRANSFERRED if transfer else follows.REMOVED
    reason = "DELETE_BY_TRANSFER" if transfer else "del_external_contact"
    await follows.set_status(session, event.user_id, event.external_user_id, status, reason, _at(event))


@router.on(ev.TransferFail)
async def on_transfer_fail(event: ev.TransferFail, session: AsyncSession) -> None:
    """A transfer to ``user_id`` failed: the customer stays with the previous manager; note why
    on that relation (the timeline has the event itself)."""
    reason = f"transfer_fail:{event.fail_reason or 'unknown'}"
    await session.execute(update(Follow).where(Follow.external_userid == event.external_user_id,
                                               Follow.userid != event.user_id, Follow.status == follows.ACTIVE)
                          .values(status_reason=reason[:128], status_at=_at(event)))
