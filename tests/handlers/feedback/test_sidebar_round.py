"""A survey offered in the chat toolbar is one round per day: sent again on a later day it is a
new round (a new token), not the round already answered or expired; other materials keep the
toolbar's one occurrence."""

from __future__ import annotations

from datetime import date

from handlers.radar.api import LinkMaker
from handlers.sidebar.say import Offers
from scrm.playbook import load_playbook
from tests.conftest import make_settings
from tests.support.playbooks import REPO


def test_a_survey_from_the_toolbar_is_a_new_round_each_day() -> None:
    pb = load_playbook(REPO / "sop", REPO / "materials", today=date(2026, 12, 7))
    links = LinkMaker(make_settings("sqlite+aiosqlite:///unused.db", radar={"signing_key": "k" * 32}))
    context = {"customer.name": "王芳", "date.month": "12月"}

    def claims(material: str, day: date) -> tuple[str | None, str]:
        offers = Offers(pb, links, "zhangwei", "private", day, context, customer="wmA")
        offer = offers.offer(pb.materials[material])
        assert offer is not None
        found = links.claims_of(offer.link)
        assert found is not None and found.customer == "wmA"
        return found.occurrence, found.token_id

    monday, tuesday = date(2026, 12, 7), date(2026, 12, 8)
    assert claims("survey-nps-onboarding", monday)[0] == "sidebar@2026-12-07"
    assert claims("survey-nps-onboarding", monday)[1] != claims("survey-nps-onboarding", tuesday)[1]
    assert claims("wealth-plan-after-payday", monday) == claims("wealth-plan-after-payday", tuesday)
