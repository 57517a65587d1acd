"""A welcome that misses its 20-second window anyway: its manager is told at once, exactly once."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from handlers.timeline.models import Timeline
from scrm.kernel.models import OutboxAction
from tests.support.service import drain
from tests.support.stack import stack


async def test_the_manager_greets_by_hand_when_the_welcome_window_was_missed(db_url: str, tmp_path: Path) -> None:
    async with stack(db_url, tmp_path) as s:
        out = await s.driver.add_external_contact("zhangwei", name="郑十四", state="lobby-chengxi")
        await drain(s.runtime)  # the welcome is queued...
        s.clock.advance(30)  # ...and the outbox gets to it only after its code expired (a burst, a crash)
        await s.send()
        await s.send()
        [welcome] = await s.outbox_rows("externalcontact/send_welcome_msg")
        assert welcome.status == "failed" and (welcome.last_error or "").startswith("window missed")
        asks = [m for m in s.notices("zhangwei") if "请手动问候" in m]
        assert len(asks) == 1 and "郑十四" in asks[0]
        assert s.state.delivered_messages(kind="welcome") == []
        ext = out.fields["ExternalUserID"]
        async with s.runtime.sessions() as session:
            kinds = (await session.scalars(select(Timeline.kind).where(Timeline.subject_id == ext))).all()
            assert "welcome.failed" in kinds
            # Replaying the outbox changes nothing: the notice exists once.
            notices = (await session.scalars(select(OutboxAction.idempotency_key)
                                             .where(OutboxAction.idempotency_key.like("welcome_failed:%")))).all()
        assert len(notices) == 1
