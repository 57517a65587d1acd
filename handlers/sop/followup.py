"""Follow-up of mass-send tasks: a task only goes out once its sender confirms it in WeCom.

Hourly: new SOP add_msg_template results are tracked by msgid; get_groupmsg_task tells whether
every sender confirmed; if not, remind_groupmsg_send — at most 3 times per 24 h (WeCom's limit)
and not before ``REMIND_AFTER`` — then give up after ``GIVE_UP_AFTER``.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.contacts.api import record_contact
from handlers.sop.models import SopMassSend, SopSend
from scrm.adapters.db.engine import dialect_of, insert_ignore, table_of
from scrm.kernel.models import OutboxAction
from scrm.kernel.outbox import Outbox, WeComCaller

log = logging.getLogger("handlers.sop.followup")

REMIND_AFTER = timedelta(hours=2)
REMIND_GAP = timedelta(hours=4)
REMINDS_PER_DAY = 3
GIVE_UP_AFTER = timedelta(days=3)


async def track_new(session: AsyncSession, now: datetime) -> int:
    """Start following SOP mass sends that WeCom accepted since the last run."""
    rows = (await session.execute(
        select(OutboxAction.wecom_msgid, OutboxAction.idempotency_key, OutboxAction.sent_at)
        .outerjoin(SopMassSend, SopMassSend.msgid == OutboxAction.wecom_msgid)
        .where(OutboxAction.status == "sent", OutboxAction.wecom_msgid.is_not(None),
               OutboxAction.idempotency_key.startswith("sop:"), SopMassSend.msgid.is_(None),
               OutboxAction.sent_at >= now - GIVE_UP_AFTER))).all()
    for msgid, key, sent_at in rows:
        await session.execute(insert_ignore(dialect_of(session), table_of(SopMassSend), ["msgid"]),
                              {"msgid": msgid, "outbox_key": key, "created_at": sent_at or now, "confirmed": False,
                               "reminds": []})
    return len(rows)


async def pending(session: AsyncSession, now: datetime) -> list[SopMassSend]:
    return list((await session.scalars(select(SopMassSend).where(
        SopMassSend.confirmed.is_(False), SopMassSend.created_at >= now - GIVE_UP_AFTER))).all())


async def task_statuses(wecom: WeComCaller, msgid: str) -> list[dict[str, Any]]:
    """Every sender's status for ``msgid`` (0 not sent, 2 sent), all pages."""
    out: list[dict[str, Any]] = []
    cursor = ""
    while True:
        res = await wecom.call("externalcontact/get_groupmsg_task", {"msgid": msgid, "limit": 1000, "cursor": cursor})
        out += list(res.get("task_list") or [])
        cursor = str(res.get("next_cursor") or "")
        if not cursor:
            return out


def may_remind(row: SopMassSend, now: datetime) -> bool:
    if now - row.created_at < REMIND_AFTER:
        return False
    recent = [datetime.fromisoformat(t) for t in row.reminds if now - datetime.fromisoformat(t) < timedelta(days=1)]
    if len(recent) >= REMINDS_PER_DAY:
        return False
    return not recent or now - max(recent) >= REMIND_GAP


async def _record_contacts(session: AsyncSession, row: SopMassSend, tasks: list[dict[str, Any]],
                           now: datetime) -> None:
    """A 1:1 push its manager confirmed (sent in WeCom) is contact with its customer, dated when sent.

    Group pushes are not contact with a customer. Seen again on every round until all senders
    confirmed: harmless, as contact only moves forward.
    """
    send = (await session.execute(select(SopSend.target, SopSend.target_type, SopSend.sender)
                                  .where(SopSend.key == row.outbox_key))).first()
    if send is None or send.target_type != "customer":
        return
    for t in tasks:
        if int(t.get("status", 0)) != 2 or str(t.get("userid") or "") != send.sender:
            continue
        sent = int(t.get("send_time") or 0)
        at = min(datetime.fromtimestamp(sent, UTC), now) if sent else now
        await record_contact(session, send.target, at, userid=send.sender)


async def follow_up(session: AsyncSession, outbox: Outbox, wecom: WeComCaller | None, now: datetime, *,
                    remind: bool = True) -> dict[str, int]:
    """One follow-up round; reads from WeCom happen before any write of the transaction.

    ``remind=False`` (quiet hours) only records confirmations: a reminder pops up on the
    sender's phone, and a later round sends it.
    """
    counts = {"confirmed": 0, "reminded": 0}
    rows = await pending(session, now)
    statuses: dict[str, list[dict[str, Any]]] = {}
    if wecom is not None:
        for row in rows:
            try:
                statuses[row.msgid] = await task_statuses(wecom, row.msgid)
            except Exception as exc:  # one unknown msgid must not stop the others
                log.warning("get_groupmsg_task %s failed: %s", row.msgid, exc)
    await track_new(session, now)
    for row in rows:
        tasks = statuses.get(row.msgid)
        if tasks is None:
            continue
        row.checked_at = now
        await _record_contacts(session, row, tasks, now)
        if tasks and all(int(t.get("status", 0)) == 2 for t in tasks):
            row.confirmed = True
            counts["confirmed"] += 1
        elif remind and may_remind(row, now):
            n = len(row.reminds) + 1
            await outbox.add(session, f"remind:{row.msgid}:{n}", "externalcontact/remind_groupmsg_send",
                             {"msgid": row.msgid})
            row.reminds = [*row.reminds, now.isoformat()]
            counts["reminded"] += 1
    return counts
