"""The survey end to end on the running service (both databases): an SOP path sends the shipped
NPS material; the customer's tracked link is counted by the radar and leads to the service's own
form for that customer; answers are checked (CSRF, score range, one per round, expiry), tag the
customer promoter/passive/detractor in WeCom through the outbox, and a low score cards the
manager at once, or at the end of quiet hours."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, select

from handlers.feedback.events import FeedbackAnswered
from handlers.feedback.models import FeedbackAnswer
from handlers.radar.api import RadarClick, record_send
from handlers.sop.api import SopTask
from handlers.timeline.models import Timeline
from tests.handlers.feedback.support import (
    MANAGER,
    SURVEY_MATERIAL,
    open_form,
    path_of,
    sent_links,
    submit,
    survey_stack,
    tag_names,
)
from tests.handlers.sop.seeding import local

PROMOTER, PASSIVE, DETRACTOR = "满意度/推荐者", "满意度/中立者", "满意度/贬损者"


async def test_a_customer_answers_once_and_is_tagged_and_a_detractor_cards_the_manager(db_url: str,
                                                                                      tmp_path: Path) -> None:
    async with survey_stack(db_url, tmp_path) as b:
        links = await sent_links(b)
        assert sorted(links) == ["wmAlice", "wmBob", "wmCarol", "wmDave", "wmErin"]
        alice = path_of(links["wmAlice"])
        assert alice.startswith("/r/")
        token = alice.removeprefix("/r/")

        # The tracked link counts the open and leads to the form for the same token.
        assert await b.open(links["wmAlice"]) == (302, f"http://127.0.0.1:8080/f/{token}")
        await b.run()
        async with b.runtime.sessions() as s:
            opens = await s.scalar(select(func.count()).select_from(RadarClick)
                                   .where(RadarClick.material_id == SURVEY_MATERIAL))
        assert opens == 1

        form = f"/f/{token}"
        status, html, csrf = await open_form(b, form)
        assert status == 200 and csrf is not None
        assert "您有多大可能把我行推荐给亲友或同事？" in html and html.count('name="score"') == 11

        # Refused, one clear line each: no CSRF token, a wrong one, a score out of range or not a number.
        assert (await submit(b, form, None, "3"))[0] == 403
        assert (await submit(b, form, "0" * 64, "3"))[0] == 403
        status, page = await submit(b, form, csrf, "11")
        assert status == 400 and "分数须为 0 到 10 之间的整数。" in page
        status, page = await submit(b, form, csrf, "七")
        assert status == 400 and "分数须为 0 到 10 之间的整数。" in page
        assert (await submit(b, form, csrf, None))[0] == 400
        assert (await submit(b, form, csrf, "3", "长" * 501))[0] == 400

        # Alice answers 3 (a detractor) at 10:05: tagged at once, and her manager gets a card now.
        assert await submit(b, form, csrf, "3", "排队太久") == (303, form)
        await b.step()
        assert await tag_names(b, "wmAlice") == {DETRACTOR}
        async with b.runtime.sessions() as s:
            (entry,) = (await s.scalars(select(Timeline).where(Timeline.subject_id == "wmAlice",
                                                               Timeline.kind == "feedback.answered"))).all()
        assert (entry.detail["score"], entry.detail["category"]) == (3, "detractor")
        (card,) = b.cards(MANAGER)
        assert card.card["main_title"]["title"] == "客户反馈预警：3 分"
        assert "客户留言：排队太久" in str(card.card.get("sub_title_text", ""))

        # The round is answered: a second submit is refused and the page says thanks.
        status, page = await submit(b, form, csrf, "10")
        assert status == 409 and "您已提交过本次问卷" in page
        status, html, csrf_again = await open_form(b, form)
        assert status == 200 and csrf_again is None and "感谢您的反馈！" in html

        # Bob (9, promoter) and Dave (8, passive) answer at 10:30: tags, no card.
        b.clock.set(local("2026-11-02", "10:30"))
        for ext, score in (("wmBob", "9"), ("wmDave", "8")):
            f = "/f/" + path_of(links[ext]).removeprefix("/r/")
            _, _, c = await open_form(b, f)
            assert (await submit(b, f, c, score))[0] == 303
        await b.step()
        assert await tag_names(b, "wmBob") == {PROMOTER}
        assert await tag_names(b, "wmDave") == {PASSIVE}
        assert len(b.cards(MANAGER)) == 1

        # Carol answers 5 at 22:30, inside quiet hours (21:00-08:30): tagged, the card waits.
        b.clock.set(local("2026-11-02", "22:30"))
        carol = "/f/" + path_of(links["wmCarol"]).removeprefix("/r/")
        _, _, c = await open_form(b, carol)
        assert (await submit(b, carol, c, "5", ""))[0] == 303
        await b.step()
        assert await tag_names(b, "wmCarol") == {DETRACTOR}
        await b.run_until(local("2026-11-03", "08:29"), late=timedelta(0))
        assert len(b.cards(MANAGER)) == 1
        await b.run_until(local("2026-11-03", "08:31"))
        titles = sorted(c.card["main_title"]["title"] for c in b.cards(MANAGER))
        assert titles == ["客户反馈预警：3 分", "客户反馈预警：5 分"]
        async with b.runtime.sessions() as s:
            tasks = {t.target: t.source for t in (await s.scalars(select(SopTask))).all()}
        assert tasks == {"wmAlice": "feedback", "wmCarol": "feedback"}

        # Alice's next round (a later send, another occurrence) says 10: the detractor tag comes off.
        links_maker = b.links
        again = links_maker.make_link(SURVEY_MATERIAL, MANAGER, customer="wmAlice", occurrence="reminder:q1@wmAlice")
        async with b.runtime.sessions() as s, s.begin():
            assert await record_send(s, links_maker, again, b.clock.now())
        f2 = "/f/" + path_of(again).removeprefix("/r/")
        _, _, c = await open_form(b, f2)
        assert (await submit(b, f2, c, "10"))[0] == 303
        await b.step()
        assert await tag_names(b, "wmAlice") == {PROMOTER}

        async with b.runtime.sessions() as s:
            stored = {(a.external_userid, a.score, a.category, a.branch) for a in
                      (await s.scalars(select(FeedbackAnswer))).all()}
        branch = "杭州分行/城西支行"
        assert stored == {("wmAlice", 3, "detractor", branch), ("wmAlice", 10, "promoter", branch),
                          ("wmBob", 9, "promoter", branch), ("wmDave", 8, "passive", branch),
                          ("wmCarol", 5, "detractor", branch)}


async def test_forged_foreign_unsent_and_expired_links_are_refused(db_url: str, tmp_path: Path) -> None:
    async with survey_stack(db_url, tmp_path) as b:
        links = await sent_links(b)
        erin = "/f/" + path_of(links["wmErin"]).removeprefix("/r/")
        token = erin.removeprefix("/f/")
        # Tampered: one character changed.
        flipped = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
        assert (await open_form(b, "/f/" + flipped))[0] == 404
        assert (await open_form(b, "/f/not-a-token"))[0] == 404
        # A genuine link of a material that is no survey, and a survey link never sent (no round).
        assert (await open_form(b, path_of(b.links.make_link("t-link", MANAGER, customer="wmErin"))
                                .replace("/r/", "/f/")))[0] == 404
        unsent = b.links.make_link(SURVEY_MATERIAL, MANAGER, customer="wmErin", occurrence="never-sent")
        assert (await open_form(b, path_of(unsent).replace("/r/", "/f/")))[0] == 404
        # A survey link minted for a group send names nobody: refused.
        group = b.links.make_link(SURVEY_MATERIAL, MANAGER, occurrence="group")
        async with b.runtime.sessions() as s, s.begin():
            await record_send(s, b.links, group, b.clock.now())
        assert (await open_form(b, path_of(group).replace("/r/", "/f/")))[0] == 404

        # valid_days 14 from the send (2026-11-02 10:00): open until just before, gone after.
        b.clock.set(local("2026-11-16", "09:59"))
        status, _, csrf = await open_form(b, erin)
        assert status == 200
        b.clock.set(local("2026-11-16", "10:01"))
        status, html, _ = await open_form(b, erin)
        assert status == 410 and "该问卷已过期" in html
        assert (await submit(b, erin, csrf, "9"))[0] == 410
        async with b.runtime.sessions() as s:
            assert await s.scalar(select(func.count()).select_from(FeedbackAnswer)) == 0


async def test_a_replayed_answer_tags_and_cards_once(db_url: str, tmp_path: Path) -> None:
    async with survey_stack(db_url, tmp_path) as b:
        links = await sent_links(b)
        form = "/f/" + path_of(links["wmBob"]).removeprefix("/r/")
        _, _, csrf = await open_form(b, form)
        assert (await submit(b, form, csrf, "2"))[0] == 303
        await b.step()
        async with b.runtime.sessions() as s:
            answer = (await s.scalars(select(FeedbackAnswer))).one()
        # The same event again (an operator's replay after a crash, under another inbox key).
        async with b.runtime.sessions() as s, s.begin():
            await b.runtime.inbox.add_internal(s, FeedbackAnswered(at=b.clock.now(), answer_id=answer.id),
                                               "replayed")
        await b.step()
        assert len(b.cards(MANAGER)) == 1
        assert len(b.calls("externalcontact/mark_tag")) == 1
        assert await tag_names(b, "wmBob") == {DETRACTOR}


async def test_a_category_without_a_tag_still_takes_the_older_tag_off(db_url: str, tmp_path: Path) -> None:
    edits = {"sop/feedback.yaml": {"passive: 满意度/中立者, ": ""}}
    async with survey_stack(db_url, tmp_path, edits=edits) as b:
        links = await sent_links(b)
        form = "/f/" + path_of(links["wmAlice"]).removeprefix("/r/")
        _, _, csrf = await open_form(b, form)
        assert (await submit(b, form, csrf, "2"))[0] == 303
        await b.step()
        assert await tag_names(b, "wmAlice") == {DETRACTOR}
        # The next round says 7: passive has no tag here, and the detractor tag comes off.
        again = b.links.make_link(SURVEY_MATERIAL, MANAGER, customer="wmAlice", occurrence="round2@wmAlice")
        async with b.runtime.sessions() as s, s.begin():
            assert await record_send(s, b.links, again, b.clock.now())
        f2 = "/f/" + path_of(again).removeprefix("/r/")
        _, _, csrf = await open_form(b, f2)
        assert (await submit(b, f2, csrf, "7"))[0] == 303
        await b.step()
        assert await tag_names(b, "wmAlice") == set()
