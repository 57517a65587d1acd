"""Reactions to a survey answer: the category tag in WeCom, and a card for the manager on a
low score (held to the end of quiet hours when answered inside them).

The answer row committed with its ``feedback.answered`` event (handlers.feedback.http); the
tag's outbox row, its mirror in ``follow_tag`` and the card (or the job holding it) commit with
the event, so a replay adds nothing. The timeline entry is written by handlers/timeline from the
event's ``subject``.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.contacts.api import Customer, Follow
from handlers.sop.api import TaskCard, issue_card
from handlers.tags import api as tagcatalog
from handlers.tags.api import FollowTag, TagCatalogError
from scrm.adapters.db.engine import dialect_of, insert_ignore, table_of
from scrm.adapters.wecom.api import WeComClient
from scrm.kernel.clock import Clock
from scrm.kernel.config import Settings
from scrm.kernel.dispatch import Router
from scrm.kernel.outbox import Outbox
from scrm.kernel.scheduler import Scheduler, TriggerSpec
from scrm.playbook import Playbook
from scrm.playbook.quiet import local_day, quiet_until
from scrm.playbook.surveys import Survey

from . import texts
from .events import FeedbackAlertDue, FeedbackAnswered
from .models import FeedbackAnswer

log = logging.getLogger("handlers.feedback")

router = Router("feedback")

MARK_TAG = "externalcontact/mark_tag"
# A card held by quiet hours is still worth sending after an outage of a day or two.
ALERT_GRACE_S = int(timedelta(days=3).total_seconds())


async def manager_of(session: AsyncSession, answer: FeedbackAnswer) -> str | None:
    """Who answers for the customer: the manager who sent the survey while they still follow the
    customer, else the customer's earliest active relation; None when nobody follows them."""
    followers = list((await session.scalars(
        select(Follow.userid).where(Follow.external_userid == answer.external_userid, Follow.status == "active")
        .order_by(Follow.created_at, Follow.userid))).all())
    if answer.sender in followers:
        return answer.sender
    return followers[0] if followers else None


async def _tag(session: AsyncSession, wecom: WeComClient, outbox: Outbox, answer: FeedbackAnswer, survey: Survey,
               userid: str) -> None:
    """Put the category's tag on the customer and take the other categories' tags off, through
    the outbox like any tag write (and into the local mirror: WeCom sends no callback for it)."""
    named = dict(survey.tags.named())
    if not named:
        return
    try:  # WeCom reads (and tag creation) before any write: SQLite holds its lock until commit
        ids = await tagcatalog.ensure(session, wecom, list(named.values()))
    except TagCatalogError as exc:
        log.error("feedback: survey tags cannot be created in WeCom; answer %s left untagged: %s", answer.id, exc)
        return
    # A category without a tag of its own still takes the others off: the customer's tag says
    # what their latest answer was, never an older one.
    add = [ids[named[answer.category]]] if answer.category in named else []
    remove = [ids[t] for c, t in named.items() if c != answer.category and ids[t] not in add]
    ext = answer.external_userid
    body = {"userid": userid, "external_userid": ext, "add_tag": add, "remove_tag": remove}
    await outbox.add(session, f"feedback:tag:{answer.token_id}", MARK_TAG, body, lane=f"customer:{ext}")
    if add:
        mirror = insert_ignore(dialect_of(session), table_of(FollowTag), ["userid", "external_userid", "tag_id"])
        await session.execute(mirror, [{"userid": userid, "external_userid": ext, "tag_id": add[0],
                                        "added_at": answer.answered_at}])
    if remove:
        await session.execute(delete(FollowTag).where(FollowTag.userid == userid, FollowTag.external_userid == ext,
                                                      FollowTag.tag_id.in_(remove)))


async def _card(session: AsyncSession, outbox: Outbox, settings: Settings, playbook: Playbook, clock: Clock,
                answer: FeedbackAnswer, survey: Survey, userid: str) -> None:
    name = await session.scalar(select(Customer.name).where(Customer.external_userid == answer.external_userid))
    title, text = texts.alert_card(name or answer.external_userid, answer.kind, answer.score, answer.comment,
                                   survey.question)
    now = clock.now()
    card = TaskCard(key=f"feedback:{answer.token_id}", userid=userid, target=answer.external_userid,
                    source="feedback", title=title, text=text, day=local_day(playbook, now), buttons=("done",))
    await issue_card(session, outbox, None, card, agent_id=settings.wecom.agent_id, now=now)


@router.on(FeedbackAnswered)
async def on_answered(event: FeedbackAnswered, session: AsyncSession, wecom: WeComClient, outbox: Outbox,
                      playbook: Playbook, settings: Settings, scheduler: Scheduler, clock: Clock) -> None:
    """Tag the customer with the answer's category; on a score the survey alerts on, a card to
    the manager now, or at the end of quiet hours."""
    answer = await session.get(FeedbackAnswer, event.answer_id)
    survey = playbook.surveys.get(answer.survey) if answer is not None else None
    if answer is None or survey is None:
        log.warning("feedback answer %s: the answer or its survey is gone; nothing to do", event.answer_id)
        return
    userid = await manager_of(session, answer)
    if userid is None:
        log.info("feedback answer %s: nobody follows the customer; no tag, no card", answer.id)
        return
    await _tag(session, wecom, outbox, answer, survey, userid)
    if not survey.alerts(answer.score):
        return
    held = quiet_until(playbook, clock.now())
    if held is None:
        await _card(session, outbox, settings, playbook, clock, answer, survey, userid)
        return
    await scheduler.put_job(session, f"feedback.alert:{answer.id}", FeedbackAlertDue,
                            TriggerSpec(type="date", at=held, timezone=playbook.policy.timezone),
                            payload={"answer_id": answer.id}, misfire_grace_s=ALERT_GRACE_S)


@router.on(FeedbackAlertDue)
async def on_alert_due(event: FeedbackAlertDue, session: AsyncSession, outbox: Outbox, playbook: Playbook,
                       settings: Settings, clock: Clock) -> None:
    """Quiet hours are over: the card held for a low score (to whoever follows the customer now)."""
    answer = await session.get(FeedbackAnswer, event.answer_id)
    survey = playbook.surveys.get(answer.survey) if answer is not None else None
    userid = await manager_of(session, answer) if answer is not None else None
    if answer is None or survey is None or userid is None:
        return
    await _card(session, outbox, settings, playbook, clock, answer, survey, userid)
