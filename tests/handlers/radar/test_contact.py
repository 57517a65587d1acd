"""A radar open is contact: the customer opened what their manager sent, so the relation's
``last_contact_at`` moves to the click (forward only; other managers' relations untouched)."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import select, update

from handlers.contacts.models import Follow
from tests.handlers.radar.data import MATERIALS, ROUTERS, radar
from tests.support.stack import Stack, stack


async def _last_contact(s: Stack, userid: str, ext: str) -> datetime | None:
    async with s.runtime.sessions() as session:
        return await session.scalar(select(Follow.last_contact_at).where(
            Follow.userid == userid, Follow.external_userid == ext))


async def test_open_records_contact_for_the_sender_only_and_never_moves_back(db_url: str, tmp_path: Path) -> None:
    async with stack(db_url, tmp_path, materials=MATERIALS, routers=ROUTERS, customers=True, sections=radar()) as s:
        ext = s.ids.customers["王芳"]
        added = s.clock.now() - timedelta(days=200)
        async with s.runtime.sessions() as session, session.begin():
            session.add_all([Follow(userid="zhangwei", external_userid=ext, created_at=added),
                             Follow(userid="lina", external_userid=ext, created_at=added)])
        link = s.links.make_link("m-fund", "zhangwei", customer=ext, occurrence="sop:onboard:day3@2026-11-23")
        s.clock.advance(minutes=3)
        opened = s.clock.now()
        assert (await s.open(link))[0] == 302
        await s.run()
        assert await _last_contact(s, "zhangwei", ext) == opened
        assert await _last_contact(s, "lina", ext) is None  # she sent nothing
        # A later contact recorded meanwhile (e.g. a call) is not moved back by an older click.
        later = opened + timedelta(days=2)
        async with s.runtime.sessions() as session, session.begin():
            await session.execute(update(Follow).where(Follow.userid == "zhangwei").values(last_contact_at=later))
        s.clock.advance(minutes=5)
        assert (await s.open(link))[0] == 302
        await s.run()
        assert await _last_contact(s, "zhangwei", ext) == later
        # A link sent to nobody in particular (a group) names no customer: no contact.
        anonymous = s.links.make_link("m-fund", "lina", occurrence="sop:group@2026-11-23")
        assert (await s.open(anonymous))[0] == 302
        await s.run()
        assert await _last_contact(s, "lina", ext) is None
