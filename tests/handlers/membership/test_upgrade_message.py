"""An upgrade sends the customer one message through their manager, with the level's rights, on
both databases: exactly one per crossing however often the event is replayed, deferred past the
quiet hours (the small playbook's 21:00-08:30), skipped and noted for a customer who opted out
(偏好/免打扰) — the manager's card goes out in every case."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from handlers.membership import handlers as membership_handlers
from handlers.membership.events import LevelChanged
from handlers.tags.api import FollowTag, Tag, TagGroup, lookup
from handlers.timeline.api import Timeline
from scrm.kernel.models import OutboxAction
from tests.handlers.sop.seeding import local, seed
from tests.support.stack import Stack, stack

REPO = Path(__file__).resolve().parents[3]
START = local("2026-11-02", "10:00")
ALICE, BOB = "wmAlice", "wmBob"
MANAGER = "zhangwei"
OPT_OUT = "偏好/免打扰"


async def upgrade(b: Stack, ext: str, cause: str, *, dedup: str | None = None) -> None:
    """The event the ledger raises when ``ext`` crosses into 核心会员 (core) by ``cause``."""
    now = b.clock.now()
    event = LevelChanged(at=now, external_userid=ext, previous="ordinary", level="core", direction="up", cause=cause,
                         day=now.date().isoformat())
    async with b.runtime.sessions() as s, s.begin():
        await b.runtime.inbox.add_internal(s, event, dedup or f"membership.level:{ext}:{cause}")
    await b.step()


async def messages(b: Stack) -> list[OutboxAction]:
    async with b.runtime.sessions() as s:
        rows = (await s.scalars(select(OutboxAction).where(OutboxAction.idempotency_key.like("membership.upgrade:%"))
                                .order_by(OutboxAction.id))).all()
    return list(rows)


@pytest.fixture
async def running(db_url: str, tmp_path: Path) -> AsyncIterator[Stack]:
    async with stack(db_url, tmp_path, start=START, demo=False, routers=[membership_handlers.router]) as b:
        (b.settings.playbook.sop_dir / "membership.yaml").write_text(
            (REPO / "sop" / "membership.yaml").read_text(encoding="utf-8"), encoding="utf-8")
        await seed(b, customers=[ALICE, BOB], manager=MANAGER, added=START - timedelta(days=30))
        async with b.runtime.sessions() as s, s.begin():
            tag_id = (await lookup(s, [OPT_OUT])).get(OPT_OUT)
            if tag_id is None:
                s.add(TagGroup(group_id="g-pref", name="偏好"))
                s.add(Tag(tag_id="t-quiet", group_id="g-pref", name="免打扰"))
                tag_id = "t-quiet"
            s.add(FollowTag(userid=MANAGER, external_userid=BOB, tag_id=tag_id, added_at=START))
        yield b


async def test_one_message_per_crossing_with_the_rights(running: Stack) -> None:
    b = running
    await upgrade(b, ALICE, "crm:ev1")
    await upgrade(b, ALICE, "crm:ev1", dedup="replayed")  # the same crossing delivered again
    sent = b.calls("externalcontact/add_msg_template")
    assert len(sent) == 1
    body = sent[0].body
    assert (body["sender"], body["external_userid"], body["chat_type"]) == (MANAGER, [ALICE], "single")
    text = body["text"]["content"]
    assert "恭喜您成为我行「核心会员」" in text
    assert "通用权益：积分兑换、生日祝福、理财小知识月刊" in text and "专属特权：专属理财经理、贵宾厅服务" in text
    assert len(b.cards(MANAGER)) == 1
    # Another crossing (a later level, another cause) is another message.
    await upgrade(b, ALICE, "crm:ev2")
    assert len(b.calls("externalcontact/add_msg_template")) == 2


async def test_quiet_hours_defer_the_message(running: Stack) -> None:
    b = running
    b.clock.set(local("2026-11-02", "22:15"))
    await upgrade(b, ALICE, "crm:late")
    assert b.calls("externalcontact/add_msg_template") == []
    (row,) = await messages(b)
    assert row.next_attempt_at == local("2026-11-03", "08:30")
    b.clock.set(datetime.fromisoformat(local("2026-11-03", "08:31").isoformat()))
    await b.step()
    assert len(b.calls("externalcontact/add_msg_template")) == 1


async def test_an_opted_out_customer_gets_no_message_and_it_is_noted(running: Stack) -> None:
    b = running
    await upgrade(b, BOB, "crm:ev9")
    assert await messages(b) == []
    assert len(b.cards(MANAGER)) == 1  # the manager still hears of it
    async with b.runtime.sessions() as s:
        notes = (await s.scalars(select(Timeline.detail).where(Timeline.kind == "membership.message_skipped",
                                                               Timeline.subject_id == BOB))).all()
    assert notes == [{"level": "core", "reason": f"opt-out tag {OPT_OUT}"}]
