"""A campaign's Moments channel (企业朋友圈) after the SOP engine queued its add_moment_task.

WeCom's enterprise moment is a *task*: add_moment_task answers a ``jobid``; the job, once done
(``get_moment_task_result`` status 3), gives the ``moment_id`` and the senders it refused; then
each sender of ``visible_range`` must publish the post from the WeCom client, and only then do
that sender's customers see it (``get_moment_task``: ``publish_status`` 1). WeCom sends no
callback for either step, so the SOP engine polls with a dated job per moment
(:data:`POLL_RUNNING` while the job runs, :data:`POLL_PUBLISHING` while managers publish) until
every sender published or :data:`FOLLOW_FOR` has passed since the post was queued.

The funnel counts a Moment honestly: it is not a message to anyone. Each audience customer is
``asked`` (targeted) when the task is queued, and becomes ``visible`` (reached: the post is
*visible to* them) when the manager they were credited to publishes it. Whether they looked at it
WeCom does not say; a tracked link in the post counts as opened when they click it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from scrm.adapters.db.engine import dialect_of, insert_ignore, table_of
from scrm.adapters.wecom.errors import WeComClientError
from scrm.kernel.models import OutboxAction
from scrm.kernel.outbox import WeComCaller

from .models import CampaignMoment, CampaignTouch

log = logging.getLogger("handlers.campaigns.moments")

ADD_MOMENT_TASK = "externalcontact/add_moment_task"
#: Touch outcomes of a Moments channel: the customer's manager was asked to publish; published.
ASKED, VISIBLE = "asked", "visible"
POLL_RUNNING = timedelta(minutes=5)
POLL_PUBLISHING = timedelta(hours=1)
#: Managers publish when they get to it; after this the channel's reach is what it is.
FOLLOW_FOR = timedelta(days=3)
JOB_DONE = 3  # get_moment_task_result status: 1 started, 2 running, 3 done
PUBLISHED = 1  # get_moment_task publish_status: 0 not yet, 1 published


async def record_moment(session: AsyncSession, key: str, campaign: str, channel: str, senders: list[str],
                        now: datetime) -> None:
    """Start following the moment queued under outbox ``key`` (a replay adds nothing)."""
    await session.execute(insert_ignore(dialect_of(session), table_of(CampaignMoment), ["outbox_key"]),
                          {"outbox_key": key[:512], "campaign": campaign, "channel": channel[:64],
                           "asked": sorted(set(senders)), "invalid": [], "published": {}, "state": "queued",
                           "created_at": now})


@dataclass(frozen=True)
class _Read:
    """What one poll learnt from WeCom (read before the transaction writes anything); no
    ``moment_id`` and no ``error``: not known yet (the outbox or the job is not done)."""

    jobid: str | None = None
    moment_id: str | None = None
    invalid: tuple[str, ...] = ()
    published: tuple[str, ...] = ()
    error: str | None = None  # the call or the job failed: stop following


async def follow_moment(session: AsyncSession, wecom: WeComCaller, key: str, now: datetime) -> datetime | None:
    """One poll of the moment queued under ``key``; returns when to poll again (None: finished)."""
    row = await session.get(CampaignMoment, key)
    if row is None or row.state in ("done", "failed"):
        return None
    try:
        read = await _read(session, wecom, row)
    except WeComClientError as exc:  # asked again at the next poll, within the follow-up window
        log.warning("campaign moment %s: %s", key, exc)
        read = _Read()
    row.checked_at = now
    if read.error is not None:
        row.state, row.error = "failed", read.error[:512]
        log.warning("campaign moment %s failed: %s", key, read.error)
        return None
    row.jobid = read.jobid or row.jobid
    if read.moment_id is None and row.moment_id is not None:  # a failed read of who published
        if now - row.created_at >= FOLLOW_FOR:
            row.state = "done"
            return None
        return now + POLL_PUBLISHING
    if read.moment_id is None:
        if now - row.created_at >= FOLLOW_FOR:
            row.state, row.error = "failed", "add_moment_task did not complete within the follow-up window"
            return None
        return now + POLL_RUNNING
    row.moment_id, row.invalid, row.state = read.moment_id, sorted(read.invalid), "running"
    new = sorted(set(read.published) - set(row.published))
    if new:
        row.published = {**row.published, **{u: now.isoformat() for u in new}}
        await session.execute(update(CampaignTouch).where(
            CampaignTouch.campaign == row.campaign, CampaignTouch.channel == row.channel,
            CampaignTouch.manager.in_(new), CampaignTouch.outcome == ASKED).values(outcome=VISIBLE, at=now))
    waiting = set(row.asked) - set(row.invalid) - set(row.published)
    if not waiting or now - row.created_at >= FOLLOW_FOR:
        row.state = "done"
        return None
    return now + POLL_PUBLISHING


async def _read(session: AsyncSession, wecom: WeComCaller, row: CampaignMoment) -> _Read:
    jobid, moment_id, invalid = row.jobid, row.moment_id, tuple(row.invalid)
    if jobid is None:
        sent = (await session.execute(select(OutboxAction.status, OutboxAction.result, OutboxAction.last_error)
                                      .where(OutboxAction.idempotency_key == row.outbox_key))).first()
        if sent is None or sent.status in ("failed", "cancelled"):
            return _Read(error=f"add_moment_task {sent.status if sent else 'missing'}: "
                               f"{(sent.last_error if sent else None) or 'no outbox action'}")
        jobid = str((sent.result or {}).get("jobid") or "") or None
        if sent.status != "sent" or jobid is None:
            # pending, or "unknown" (a lost reply: an operator decides, see the outbox semantics)
            return _Read()
    if moment_id is None:
        res = await wecom.call("externalcontact/get_moment_task_result", method="GET", params={"jobid": jobid})
        if int(res.get("status") or 0) != JOB_DONE:
            return _Read(jobid=jobid)  # the job is still running
        result: dict[str, Any] = res.get("result") or {}
        if int(result.get("errcode") or 0) != 0 or not result.get("moment_id"):
            return _Read(error=f"moment job {jobid}: {result.get('errcode')} {result.get('errmsg') or ''}".strip())
        moment_id = str(result["moment_id"])
        invalid = tuple(str(u) for u in (result.get("invalid_sender_list") or {}).get("user_list") or [])
    published: list[str] = []
    cursor = ""
    while True:
        res = await wecom.call("externalcontact/get_moment_task", {"moment_id": moment_id, "limit": 1000,
                                                                   "cursor": cursor})
        published += [str(t["userid"]) for t in res.get("task_list") or []
                      if int(t.get("publish_status") or 0) == PUBLISHED]
        cursor = str(res.get("next_cursor") or "")
        if not cursor:
            break
    return _Read(jobid=jobid, moment_id=moment_id, invalid=invalid, published=tuple(published))


async def moment_channels(session: AsyncSession, campaign: str) -> list[dict[str, Any]]:
    """Each Moments channel of ``campaign`` for the report: asked, published, visible to."""
    rows = (await session.scalars(select(CampaignMoment).where(CampaignMoment.campaign == campaign)
                                  .order_by(CampaignMoment.channel, CampaignMoment.created_at))).all()
    out: list[dict[str, Any]] = []
    for r in rows:
        visible = await session.scalars(select(CampaignTouch.customer).where(
            CampaignTouch.campaign == campaign, CampaignTouch.channel == r.channel, CampaignTouch.outcome == VISIBLE))
        out.append({"channel": r.channel, "state": r.state, "asked": len(r.asked), "refused": len(r.invalid),
                    "published": len(r.published), "visible_to": len(set(visible)), "error": r.error})
    return out
