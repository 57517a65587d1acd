"""Contact recency: what the service sees of a manager reaching a customer moves the relation's
``last_contact_at`` forward — a task card marked done, a 1:1 push its manager confirmed in WeCom —
and the "no contact for N days" reminder counts from it (from the add date when never in touch)."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import select, update

from handlers.contacts.models import Follow
from tests.handlers.sop.seeding import ROUTERS, local, seed
from tests.handlers.sop.test_task_cards import press, transfer_card
from tests.support.playbooks import write_shipped_playbook
from tests.support.stack import Stack, stack

START = local("2026-11-02", "10:00")  # a Monday
CALLED, SILENT = "wmBigSpender", "wmSilent"  # transfer_card names wmBigSpender
PATH = """\
path: hello
name: 问候
when: {}
steps:
  - {id: hello, on: "added_at + 1 day", at: "10:00", send: t-text}
"""


async def last_contact(b: Stack, ext: str, userid: str = "zhangwei") -> datetime | None:
    async with b.runtime.sessions() as s:
        return await s.scalar(select(Follow.last_contact_at).where(Follow.userid == userid,
                                                                     Follow.external_userid == ext))


async def never_contacted(b: Stack) -> None:
    """Forget the contact ``seed`` records: these relations were never in touch."""
    async with b.runtime.sessions() as s, s.begin():
        await s.execute(update(Follow).values(last_contact_at=None))


def no_contact_cards(b: Stack) -> list[str]:
    return [c.card["sub_title_text"] for c in b.cards("zhangwei") if "没有联系" in c.card["sub_title_text"]]


async def test_done_card_is_contact_and_the_no_contact_reminder_counts_from_it(db_url: str, tmp_path: Path) -> None:
    async with stack(db_url, tmp_path, start=START, demo=False, routers=ROUTERS,
                     playbook=write_shipped_playbook(tmp_path)) as b:
        # Both added 154 days ago, neither ever contacted: both are due for a "90 days" card.
        await seed(b, customers=[CALLED, SILENT])
        await never_contacted(b)
        card = await transfer_card(b)
        assert await last_contact(b, CALLED) is None  # a card sent is not yet contact
        b.clock.advance(minutes=30)
        done_at = b.clock.now()
        await press(b, card, "done")
        assert await last_contact(b, CALLED) == done_at
        assert await last_contact(b, SILENT) is None
        # Tomorrow's scan (09:00): only the customer nobody was in touch with.
        await b.run_until(local("2026-11-03", "10:00"))
        cards = no_contact_cards(b)
        assert len(cards) == 1 and SILENT in cards[0]
        # 90 days after the done card, the called customer's silence is long enough too.
        await b.run_until(START + timedelta(days=89))  # 89 days after the done card
        assert len(no_contact_cards(b)) == 1
        await b.run_until(START + timedelta(days=90))
        cards = no_contact_cards(b)
        assert len(cards) == 2 and CALLED in cards[1]


async def test_not_relevant_is_no_contact(db_url: str, tmp_path: Path) -> None:
    async with stack(db_url, tmp_path, start=START, demo=False, routers=ROUTERS,
                     playbook=write_shipped_playbook(tmp_path)) as b:
        await seed(b, customers=[CALLED])
        await never_contacted(b)
        card = await transfer_card(b)
        await press(b, card, "not_relevant")
        assert await last_contact(b, CALLED) is None


async def test_confirmed_one_to_one_push_is_contact_when_sent(db_url: str, tmp_path: Path) -> None:
    start = local("2026-11-02", "09:00")
    async with stack(db_url, tmp_path, start=start, demo=False, routers=ROUTERS,
                     playbook=write_shipped_playbook(tmp_path, paths={"hello": PATH})) as b:
        await seed(b, customers=[SILENT], added=local("2026-11-01", "12:00"))
        await never_contacted(b)
        await b.run_until(local("2026-11-02", "11:00"))
        (msgid,) = b.state.msg_templates
        assert await last_contact(b, SILENT) is None  # queued and accepted, not yet sent by the manager
        await b.run_until(local("2026-11-02", "11:20"))
        confirmed = b.clock.now().replace(microsecond=0)
        b.driver.confirm_msg_task(msgid, "zhangwei")
        b.clock.advance(minutes=50)
        await b.run_until(local("2026-11-02", "14:00"))
        assert await last_contact(b, SILENT) == confirmed  # WeCom's send time, not the follow-up's
