"""The customer's check-in and quiz pages: ``GET /m/{token}`` shows the page, ``POST`` does it.

Behaviours ``on: checkin`` and ``on: quiz`` earn here. A check-in earns once per local day
(source ``checkin:<day>``), a quiz once per quiz answered right (source ``quiz:<name>``; a wrong
answer earns nothing and may be tried again); the YAML's caps apply as to any behaviour. Only a
POST earns: the link previews chat apps fetch with GET must not check anyone in. A link that is
not genuine is one plain 404, whatever is wrong with it.
"""

from __future__ import annotations

import html
import logging
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from aiohttp import web
from sqlalchemy import select

from handlers.crm.api import EVENT_KINDS
from scrm.playbook.issues import PlaybookError

from .ledger import Earning, Posted, post
from .links import PATH_PREFIX, LinkClaims, Links
from .models import MembershipEntry
from .rules import Behaviour, Membership, Quiz, load_current

log = logging.getLogger("handlers.membership.http")

if TYPE_CHECKING:
    from scrm.kernel.service import Runtime

NOT_FOUND = "链接无效或已过期。"


def _page(title: str, *paragraphs: str, form: str = "") -> web.Response:
    body = "".join(f"<p>{html.escape(p)}</p>" for p in paragraphs)
    text = (f'<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><meta name="viewport" '
            f'content="width=device-width,initial-scale=1"><title>{html.escape(title)}</title></head>'
            f"<body><h1>{html.escape(title)}</h1>{body}{form}</body></html>")
    return web.Response(text=text, content_type="text/html")


def _button(label: str) -> str:
    return f'<form method="post"><button type="submit">{html.escape(label)}</button></form>'


def _quiz_form(quiz: Quiz) -> str:
    options = "".join(f'<p><label><input type="radio" name="answer" value="{html.escape(c)}"> {html.escape(c)}'
                      f"</label></p>" for c in quiz.choices)
    return f'<form method="post">{options}<button type="submit">提交答案</button></form>'


def _earned(b: Behaviour, posted: Posted, what: str) -> str:
    if posted.entries:
        return f"{what}成功！获得 {b.points} 积分、{b.growth} 成长值。"
    if posted.repeated:
        return "今天已经签过到了，明天再来吧。" if what == "签到" else "您已答对过本题，奖励已发放。"
    return f"{what}奖励已达本期上限，感谢参与！"


class MembershipPages:
    """The pages of one service instance."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.links = Links(runtime.settings)
        self.tz = ZoneInfo(runtime.settings.playbook.timezone)

    def _rules(self) -> Membership:
        """The rules; a broken file reads as no behaviours (the page says the activity is closed,
        ``scrm membership check`` names the line) rather than an error page."""
        try:
            return load_current(self.runtime.settings.playbook.sop_dir, EVENT_KINDS)
        except PlaybookError as exc:
            log.error("sop/membership.yaml has %d problem(s); check-in and quizzes closed: %s", len(exc.errors),
                      exc.errors[0])
            return Membership()

    async def _earn(self, rules: Membership, b: Behaviour, customer: str, source: str) -> Posted:
        rt = self.runtime
        now = rt.clock.now()
        async with rt.sessions() as session, session.begin():
            posted = await post(session, rules, [Earning(customer, b.name, source, now)], tz=self.tz, now=now,
                                inbox=rt.inbox)
        rt.inbox.wake()  # an upgrade's card and message
        return posted

    async def _answered(self, customer: str, quiz: Quiz) -> bool:
        async with self.runtime.sessions() as session:
            return await session.scalar(
                select(MembershipEntry.id).where(MembershipEntry.external_userid == customer,
                                                 MembershipEntry.source == f"quiz:{quiz.name}").limit(1)) is not None

    def _claims(self, request: web.Request) -> LinkClaims | None:
        return self.links.claims(request.match_info["token"])

    async def show(self, request: web.Request) -> web.Response:
        claims = self._claims(request)
        rules = self._rules()
        if claims is None:
            return web.Response(status=404, text=NOT_FOUND)
        if claims.kind == "checkin":
            if rules.behaviour_on("checkin") is None:
                return _page("每日签到", "签到活动暂未开放。")
            return _page("每日签到", "每天签到一次，积累积分和成长值。", form=_button("签到"))
        quiz = rules.quiz(claims.ref)
        if quiz is None or rules.behaviour_on("quiz") is None:
            return _page("答题", "本题已下线。")
        if await self._answered(claims.customer, quiz):
            return _page("答题", quiz.question, "您已答对本题，奖励已发放。")
        return _page("答题", quiz.question, form=_quiz_form(quiz))

    async def act(self, request: web.Request) -> web.Response:
        claims = self._claims(request)
        rules = self._rules()
        if claims is None:
            return web.Response(status=404, text=NOT_FOUND)
        if claims.kind == "checkin":
            b = rules.behaviour_on("checkin")
            if b is None:
                return _page("每日签到", "签到活动暂未开放。")
            day = self.runtime.clock.now().astimezone(self.tz).date()
            posted = await self._earn(rules, b, claims.customer, f"checkin:{day.isoformat()}")
            return _page("每日签到", _earned(b, posted, "签到"))
        quiz, b = rules.quiz(claims.ref), rules.behaviour_on("quiz")
        if quiz is None or b is None:
            return _page("答题", "本题已下线。")
        answer = str((await request.post()).get("answer", ""))
        if answer != quiz.answer:
            return _page("答题", quiz.question, "回答不正确，再想想？", form=_quiz_form(quiz))
        posted = await self._earn(rules, b, claims.customer, f"quiz:{quiz.name}")
        return _page("答题", quiz.question, "回答正确！" + _earned(b, posted, "答题"))


def install_pages(app: web.Application, runtime: Runtime) -> None:
    """Add ``GET|POST /m/{token}`` to the service app."""
    pages = MembershipPages(runtime)
    app.router.add_get(PATH_PREFIX + "{token}", pages.show)
    app.router.add_post(PATH_PREFIX + "{token}", pages.act)
