"""Callbacks that arrive while a page is on its way: one handled after the page was read is
newer than the page and wins (the page never undoes it); one handled before the read is older
and the page, WeCom's later word, replaces it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from sqlalchemy import select

from handlers.backfill.runner import run_backfill
from handlers.contacts.api import Follow
from scrm.adapters.wecom.models import BatchGetByUserResponse
from tests.handlers.backfill.support import context, mirror_relations, seed, wecom_relations
from tests.support.stack import Stack, stack


class CallbacksAfterFirstRead:
    """The service's WeCom client, except that right after the first batch/get_by_user page is
    read (before it is written) WeCom changes and its callbacks are delivered and handled."""

    def __init__(self, s: Stack, meanwhile: Callable[[], Awaitable[None]]) -> None:
        self._s, self._meanwhile, self._fired = s, meanwhile, False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._s.wecom, name)

    async def batch_get_by_user(self, *args: Any, **kwargs: Any) -> BatchGetByUserResponse:
        reply = await self._s.wecom.batch_get_by_user(*args, **kwargs)
        if not self._fired:
            self._fired = True
            self._s.clock.advance(5)
            await self._meanwhile()
            await self._s.run()
            self._s.clock.advance(5)
        return reply


async def _status(s: Stack, userid: str, ext: str) -> str | None:
    async with s.runtime.sessions() as session:
        return await session.scalar(select(Follow.status).where(Follow.userid == userid,
                                                                Follow.external_userid == ext))


async def test_a_callback_newer_than_the_page_wins(db_url: str, tmp_path: Path) -> None:
    async with stack(db_url, tmp_path) as s:
        seeded = seed(s, 20, members=2, tags=10, tags_per_relation=3, shared_every=0)
        m0, m1 = seeded.members
        c = seeded.customers
        # relation c[0] was written by m0 (round robin: even customers with m0, odd with m1)
        edited_tags = s.state.follow(m0, c[2])
        assert edited_tags is not None
        dropped, kept = edited_tags.tag_ids[0], edited_tags.tag_ids[1:]

        async def meanwhile() -> None:
            await s.driver.del_external_contact(m0, c[0])            # the manager deletes a customer
            await s.driver.del_follow_user(m1, c[1])                 # a customer deletes the manager
            await s.driver.edit_external_contact(m0, c[2], remove_tags=[dropped])  # a tag taken off
            await s.driver.add_external_contact(m1, c[4], welcome_code=False)  # a second manager added

        proxy = CallbacksAfterFirstRead(s, meanwhile)
        outcome = await run_backfill(context(s, wecom=proxy), trigger="start")
        lines = {line.stage: line for line in outcome.stages}
        assert lines["relations"].skipped == 3  # the page's rows for c0, c1 and c2 were older than their callbacks
        assert await _status(s, m0, c[0]) == "removed" and await _status(s, m1, c[1]) == "lost"
        mirror = await mirror_relations(s)
        assert mirror[(m0, c[2])] == set(kept)
        assert (m1, c[4]) in mirror
        # in the end the mirror is what WeCom holds now, not what the page said
        assert mirror == wecom_relations(s)


async def test_a_callback_older_than_the_page_loses(db_url: str, tmp_path: Path) -> None:
    async with stack(db_url, tmp_path) as s:
        seeded = seed(s, 6, members=1, tags=5, shared_every=0)
        m0, c3 = seeded.members[0], seeded.customers[3]
        # the customer left (handled), then came back while no callback reached us
        relation = s.state.follow(m0, c3)
        assert relation is not None
        tags = list(relation.tag_ids)
        await s.driver.del_follow_user(m0, c3)
        await s.run()
        assert await _status(s, m0, c3) == "lost"
        s.state.add_follow(m0, c3, s.clock.now().timestamp(), tag_ids=tags)
        s.clock.advance(60)
        await run_backfill(context(s), trigger="start")
        assert await _status(s, m0, c3) == "active"
        assert (await mirror_relations(s))[(m0, c3)] == set(tags)
        assert await mirror_relations(s) == wecom_relations(s)
