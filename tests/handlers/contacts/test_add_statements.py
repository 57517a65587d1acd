"""The database work of one welcomed add, pinned: the statements a customer added through a
channel QR code costs the service (the callback stored, the event handled by every feature, the
welcome and the channel tags sent and recorded, the welcome's trail record), counted as the
driver sends them. A change that adds a statement per add must raise this ceiling on purpose."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncEngine

from handlers.compliance.models import TrailRecord
from handlers.crm.models import CrmWritebackState
from handlers.tags.api import FollowTag
from tests.support.stack import stack

WELCOME = "externalcontact/send_welcome_msg"
# 22 for the add itself (26 at 0a6fe8d: the CRM read back the unionid and the relation's tags
# the contacts handler had just written, looked CRM ids up by unionid and by binding apart, and
# the welcome and the channel tags were two inserts), plus 3 claims that find the queues empty
# (the inbox's and the outbox's two lanes' last looks, which a burst shares among many adds).
CEILING = 25


@contextmanager
def counted(engine: AsyncEngine) -> Iterator[Counter[str]]:
    counts: Counter[str] = Counter()

    def seen(conn: Any, cursor: Any, statement: str, params: Any, context: Any, executemany: bool) -> None:
        counts[" ".join(statement.split())[:90]] += 1

    event.listen(engine.sync_engine, "before_cursor_execute", seen)
    try:
        yield counts
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", seen)


async def test_a_welcomed_add_through_a_tagged_channel_costs_at_most_the_pinned_statements(
        db_url: str, tmp_path: Path) -> None:
    async with stack(db_url, tmp_path) as s:
        # The first add through the channel creates its tags in WeCom (once); the second is the
        # everyday one, whose tags exist already.
        await s.driver.add_external_contact("lina", name="王十三", state="lobby-chengxi")
        await s.run()
        await s.run()
        with counted(s.runtime.engine) as counts:
            out = await s.driver.add_external_contact("zhangwei", name="郑十四", state="lobby-chengxi")
            await s.run()
        ext = out.fields["ExternalUserID"]
        # It did everything a welcomed add does: welcome sent and recorded, channel tags sent.
        welcomes = await s.outbox_rows(WELCOME)
        assert [w.status for w in welcomes] == ["sent", "sent"]
        assert [c.body["external_userid"] for c in s.calls("externalcontact/mark_tag")][-1] == ext
        async with s.runtime.sessions() as db:
            assert len((await db.scalars(select(TrailRecord))).all()) == 2
            tags = set((await db.scalars(select(FollowTag.tag_id).where(FollowTag.external_userid == ext))).all())
            state = await db.get(CrmWritebackState, ("zhangwei", ext))
        assert tags and state is not None and state.tag_ids == sorted(tags)  # no CRM-owned tags here
        total = sum(counts.values())
        assert total <= CEILING, "\n".join(f"{n} {stmt}" for stmt, n in counts.most_common())
