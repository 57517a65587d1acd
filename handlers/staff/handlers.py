"""Directory reactions: the address book's ``change_contact`` callbacks and the nightly full sync.

Member events re-read the member from WeCom (``user/get``: departments, leadership, status)
before writing, since an update callback carries only what changed; when the app may not read
the address book the callback's own fields are used. Department events carry what they change.
Every handler ends with the members' paths and team leads recomputed. Address-book events share
one order key (``scrm/adapters/wecom/events.py``), so they apply one after another, in order.
"""

from __future__ import annotations

import logging

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.staff import directory
from handlers.staff.directory import PersonChange
from handlers.staff.events import StaffSync
from handlers.staff.sync import LEFT_CORP, NOT_READABLE, person_of, read_directory
from scrm.adapters.wecom import events as ev
from scrm.adapters.wecom.api import WeComClient
from scrm.adapters.wecom.errors import WeComError
from scrm.kernel.clock import Clock
from scrm.kernel.dispatch import Router

router = Router("staff")
log = logging.getLogger("handlers.staff")


def _from_event(event: ev.CreateUser | ev.UpdateUser, userid: str) -> PersonChange:
    """The member as the callback describes them (only what it carries)."""
    departments = tuple(event.department) or None
    leads: frozenset[int] | None = None
    if departments is not None and event.is_leader_in_dept:
        leads = frozenset(d for d, flag in zip(departments, event.is_leader_in_dept, strict=False) if flag)
    active = None if event.status is None else event.status != LEFT_CORP
    return PersonChange(userid=userid, name=event.name or None, departments=departments,
                        main_department=event.main_department, leader_in=leads, active=active)


@router.on(ev.CreateUser, ev.UpdateUser)
async def on_user(event: ev.CreateUser | ev.UpdateUser, session: AsyncSession, wecom: WeComClient,
                  clock: Clock) -> None:
    """A member was added or changed in the address book."""
    userid = event.user_id
    if isinstance(event, ev.UpdateUser) and event.new_user_id and event.new_user_id != userid:
        # The old userid's customers and cards stay under it: WeCom moves them, we do not yet.
        log.warning("member's userid changed; the directory follows the new one",
                    extra={"userid": userid, "new_userid": event.new_user_id})
        userid = event.new_user_id
    try:
        person = person_of(await wecom.get_user(userid))
    except WeComError as exc:
        if exc.errcode not in NOT_READABLE:
            raise
        person = _from_event(event, userid)
    await directory.apply_person(session, person, clock.now())


@router.on(ev.DeleteUser)
async def on_delete_user(event: ev.DeleteUser, session: AsyncSession, clock: Clock) -> None:
    """A member was deleted: they left the bank. Their row stays, resigned."""
    await directory.resign(session, event.user_id, clock.now())


@router.on(ev.CreateParty, ev.UpdateParty)
async def on_party(event: ev.CreateParty | ev.UpdateParty, session: AsyncSession, clock: Clock) -> None:
    """A department was created, renamed or moved."""
    order = event.order if isinstance(event, ev.CreateParty) else None
    await directory.put_department(session, event.id, clock.now(), name=event.name or None,
                                   parent_id=event.parent_id, parent_given=event.parent_id is not None,
                                   sort_order=order)


@router.on(ev.DeleteParty)
async def on_delete_party(event: ev.DeleteParty, session: AsyncSession) -> None:
    """A (necessarily empty) department was deleted."""
    await directory.drop_department(session, event.id)


@router.on(StaffSync)
async def on_sync(event: StaffSync, session: AsyncSession, wecom: WeComClient, clock: Clock) -> None:
    """The nightly full sync: read the whole address book, then apply it in this transaction."""
    snapshot = await read_directory(wecom)
    report = await directory.apply_snapshot(session, snapshot, clock.now())
    log.info(report.summary("staff directory synced"),
             extra={"added": len(report.added), "updated": len(report.updated), "resigned": len(report.resigned)})
