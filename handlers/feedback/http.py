"""``GET /f/{token}`` (the survey form, or its thank-you page once answered) and ``POST /f/{token}``.

Only verifying and storing happen in the request (ARCHITECTURE §1): the answer row and a
``feedback.answered`` inbox event commit together, and the handlers tag the customer and alert
the manager. The page is server-rendered, mobile-first, with its small stylesheet inline (no
CDN, no script needed to answer).

CSRF: the customer has no session, so the form carries a signed double-submit token. The GET
sets a random ``scrm_fb`` cookie (HttpOnly, SameSite=Lax) and puts HMAC(key, cookie, round) in
the form; a POST must bring both and they must match (constant-time). A page on another site
can neither read the cookie nor make the browser send it with a cross-site POST.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import jinja2
from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.contacts.api import Member
from handlers.lifecycle.api import CustomerSegment
from handlers.radar.api import SURVEY_PATH, LinkMaker
from scrm.adapters.db.engine import dialect_of, insert_ignore, table_of
from scrm.playbook.surveys import COMMENT_MAX_CHARS, category_of, score_range

from . import texts
from .events import FeedbackAnswered
from .form import Refused, Round, Submitted, answered, open_round, read_answer
from .models import FeedbackAnswer

if TYPE_CHECKING:
    from scrm.kernel.service import Runtime

log = logging.getLogger("handlers.feedback.http")

HERE = Path(__file__).parent
COOKIE = "scrm_fb"
CSRF_FIELD = "csrf_token"
BRANCH_LEVELS = 2  # 分行/支行: the first two levels of a member's department path


def branch_of(department: str) -> str:
    """The 分行/支行 of a department path (what ``--by branch`` groups on)."""
    return "/".join([p for p in department.split("/") if p][:BRANCH_LEVELS])


class FormView:
    """The survey form of one service instance."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.settings = runtime.settings
        self.links = LinkMaker(self.settings)
        # The CSRF key is derived from the link key, never the link key itself.
        self.csrf_key = hmac.new(self.links.key, b"scrm feedback form csrf", hashlib.sha256).digest()
        self.secure = self.settings.server.public_url.lower().startswith("https://")
        self.env = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True,
                                      undefined=jinja2.StrictUndefined)

    # -- pieces ----------------------------------------------------------------------------

    def csrf_for(self, nonce: str, rnd: Round) -> str:
        return hmac.new(self.csrf_key, f"{nonce}\0{rnd.token_id}".encode(), hashlib.sha256).hexdigest()

    def page(self, template: str, context: dict[str, Any], *, status: int = 200) -> web.Response:
        html = self.env.get_template(template).render(**context)
        return web.Response(status=status, text=html, content_type="text/html", charset="utf-8",
                            headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer",
                                     "X-Frame-Options": "DENY"})

    def refused(self, exc: Refused) -> web.Response:
        return self.page("refused.html", {"message": exc.message}, status=exc.status)

    def thanks(self, rnd: Round, *, note: str | None = None, status: int = 200) -> web.Response:
        return self.page("thanks.html", {"thanks": rnd.survey.thanks, "note": note,
                                         "more": str(rnd.material.link.url) if rnd.material.link else None,
                                         "more_label": texts.CONTINUE}, status=status)

    def form(self, request: web.Request, rnd: Round, *, error: str | None = None, chosen: str = "",
             comment: str = "", status: int = 200) -> web.Response:
        nonce = request.cookies.get(COOKIE) or secrets.token_urlsafe(18)
        low, high = score_range(rnd.survey.kind)
        response = self.page("form.html", {
            "title": rnd.material.link.title if rnd.material.link else rnd.survey.question,
            "question": rnd.survey.question, "kind": rnd.survey.kind, "scores": list(range(low, high + 1)),
            "low_label": texts.LOW[rnd.survey.kind], "high_label": texts.HIGH[rnd.survey.kind],
            "comment_label": rnd.survey.comment, "comment_max": COMMENT_MAX_CHARS, "comment": comment,
            "chosen": chosen, "error": error, "action": SURVEY_PATH + rnd.token, "csrf_field": CSRF_FIELD,
            "csrf": self.csrf_for(nonce, rnd), "submit": texts.SUBMIT}, status=status)
        if COOKIE not in request.cookies:
            response.set_cookie(COOKIE, nonce, path=SURVEY_PATH, httponly=True, samesite="Lax", secure=self.secure)
        return response

    # -- routes ----------------------------------------------------------------------------

    async def get(self, request: web.Request) -> web.StreamResponse:
        now = self.runtime.clock.now()
        async with self.runtime.sessions() as session:
            try:
                rnd = await open_round(session, self.links, self.runtime.playbook.current,
                                       request.match_info["token"], now)
            except Refused as exc:
                return self.refused(exc)
            if await answered(session, rnd) is not None:
                return self.thanks(rnd)
        return self.form(request, rnd)

    async def post(self, request: web.Request) -> web.StreamResponse:
        now = self.runtime.clock.now()
        posted = await request.post()
        async with self.runtime.sessions() as session, session.begin():
            try:
                rnd = await open_round(session, self.links, self.runtime.playbook.current,
                                       request.match_info["token"], now)
            except Refused as exc:
                return self.refused(exc)
            nonce = request.cookies.get(COOKIE, "")
            sent = str(posted.get(CSRF_FIELD, ""))
            if not nonce or not hmac.compare_digest(sent, self.csrf_for(nonce, rnd)):
                return self.refused(Refused(403, texts.FORM_EXPIRED))
            if await answered(session, rnd) is not None:
                return self.thanks(rnd, note=texts.ALREADY, status=409)
            score, comment = posted.get("score"), posted.get("comment")
            score_text = score if isinstance(score, str) else None
            comment_text = comment if isinstance(comment, str) else None
            try:
                got = read_answer(rnd.survey, score_text, comment_text)
            except Refused as exc:
                return self.form(request, rnd, error=exc.message, status=exc.status, chosen=score_text or "",
                                 comment=comment_text or "")
            stored = await self.store(session, rnd, got, now)
        if not stored:  # the same link submitted twice at once: the other one won
            return self.thanks(rnd, note=texts.ALREADY, status=409)
        self.runtime.inbox.wake()
        raise web.HTTPSeeOther(SURVEY_PATH + rnd.token)

    async def store(self, session: AsyncSession, rnd: Round, got: Submitted, now: datetime) -> bool:
        """The answer and its event, in the caller's transaction; False when the round was answered."""
        department = await session.scalar(select(Member.department).where(Member.userid == rnd.sender))
        seg = await session.get(CustomerSegment, rnd.customer)
        row = {"token_id": rnd.token_id, "survey": rnd.survey_id, "kind": rnd.survey.kind,
               "external_userid": rnd.customer, "sender": rnd.sender, "material_id": rnd.material.id,
               "occurrence": rnd.occurrence, "score": got.score, "category": category_of(rnd.survey.kind, got.score),
               "comment": got.comment, "sent_at": rnd.sent_at, "answered_at": now,
               "day": now.astimezone(ZoneInfo(self.settings.playbook.timezone)).date(),
               "branch": branch_of(department or ""), "tier": seg.tier if seg else None,
               "segments": list(seg.segments) if seg else []}
        res = await session.execute(insert_ignore(dialect_of(session), table_of(FeedbackAnswer), ["token_id"]), row)
        if getattr(res, "rowcount", 1) == 0:
            return False
        answer_id = await session.scalar(select(FeedbackAnswer.id).where(FeedbackAnswer.token_id == rnd.token_id))
        assert answer_id is not None
        event = FeedbackAnswered(at=now, answer_id=answer_id, survey=rnd.survey_id, score=got.score,
                                 category=row["category"], subject=("customer", rnd.customer))
        await self.runtime.inbox.add_internal(session, event, f"feedback.answered:{rnd.token_id}")
        return True


def install_feedback(app: web.Application, runtime: Runtime) -> None:
    """Add ``GET|POST /f/{token}`` to the service app."""
    view = FormView(runtime)
    app.router.add_get(SURVEY_PATH + "{token}", view.get)
    app.router.add_post(SURVEY_PATH + "{token}", view.post)
