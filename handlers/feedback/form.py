"""What a survey link stands for, checked: the round it opens and whether it may be answered.

A link is the radar token of one 1:1 send of a survey material (see :mod:`handlers.radar.tokens`):
sealed, so it cannot be forged or edited to name another customer. It is honoured only when

* the token is genuine and its material is (still) a survey material of the current playbook,
  naming a survey of sop/feedback.yaml, and the token names a customer;
* the send was recorded (``radar_send``: links are counted when they go out), which also says
  when it was sent; a link is answerable for the survey's ``valid_days`` after that, on the
  injected clock.

One round is one token: the first answer stands and a second submit is refused (409). An NPS
counts each customer once per round, and a detractor's alert is not retracted by voting again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.radar.api import LinkMaker, RadarSend
from scrm.playbook import Playbook
from scrm.playbook.models import Material
from scrm.playbook.surveys import COMMENT_MAX_CHARS, Survey, score_range

from . import texts
from .models import FeedbackAnswer


@dataclass(frozen=True)
class Round:
    """A genuine, recorded survey link: who answers what, sent when."""

    token: str
    token_id: str
    survey_id: str
    survey: Survey
    material: Material
    customer: str
    sender: str
    occurrence: str | None
    sent_at: datetime

    @property
    def expires_at(self) -> datetime:
        return self.sent_at + timedelta(days=self.survey.valid_days)


class Refused(Exception):
    """The link cannot be answered: ``status`` and a one-line Chinese message for the customer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


async def open_round(session: AsyncSession, links: LinkMaker, playbook: Playbook | None, token: str,
                     now: datetime) -> Round:
    """The round ``token`` opens, or :class:`Refused` (404 unknown, 410 expired)."""
    claims = links.claims_of(token)
    material = playbook.materials.get(claims.material) if claims is not None and playbook is not None else None
    survey = playbook.surveys.get(material.survey) if material is not None and material.survey and playbook else None
    if claims is None or material is None or survey is None or not claims.customer:
        # One answer for forged, tampered, group and retired links: nothing to learn from it.
        raise Refused(404, texts.NOT_FOUND)
    sent_at = await session.scalar(select(RadarSend.at).where(RadarSend.token_id == claims.token_id))
    if sent_at is None:
        raise Refused(404, texts.NOT_FOUND)
    rnd = Round(token, claims.token_id, str(material.survey), survey, material, claims.customer, claims.sender,
                claims.occurrence, sent_at)
    if now >= rnd.expires_at:
        raise Refused(410, texts.EXPIRED)
    return rnd


async def answered(session: AsyncSession, rnd: Round) -> FeedbackAnswer | None:
    """This round's answer, when it was given."""
    return (await session.scalars(select(FeedbackAnswer).where(FeedbackAnswer.token_id == rnd.token_id))).first()


@dataclass(frozen=True)
class Submitted:
    score: int
    comment: str


def read_answer(survey: Survey, score_text: str | None, comment_text: str | None) -> Submitted:
    """The posted score and comment, checked (:class:`Refused` 400 with what is wrong)."""
    low, high = score_range(survey.kind)
    text = (score_text or "").strip()
    if not text:
        raise Refused(400, texts.NO_SCORE)
    if not (text.isascii() and text.isdigit()) or not low <= int(text) <= high:
        raise Refused(400, texts.bad_score(low, high))
    comment = (comment_text or "").strip() if survey.comment is not None else ""
    if len(comment) > COMMENT_MAX_CHARS:
        raise Refused(400, texts.long_comment(COMMENT_MAX_CHARS))
    return Submitted(int(text), comment)
