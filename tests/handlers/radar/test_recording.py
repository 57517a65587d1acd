"""How a click is stored: queued for the inbox's group-commit writer without the redirect waiting,
flushed by a graceful stop, bounded, readable as the same ``InternalEvent`` as ever, and parsed into
its typed class, ``RadarClickEvent``."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from handlers.radar.events import RadarClickEvent
from handlers.radar.http import click_event_json
from scrm.kernel.events import EventKinds, InternalEvent
from scrm.kernel.models import InboxEvent
from tests.handlers.radar.data import MATERIALS, ROUTERS, radar
from tests.support.stack import Stack, stack

TARGET = "https://bank.example.com/fund?week=47"
HANG_GUARD_S = 30  # only to fail instead of hanging if a linger were never cut short


async def _stored_clicks(s: Stack) -> int:
    async with s.runtime.sessions() as session:
        n = await session.scalar(select(func.count()).select_from(InboxEvent)
                                 .where(InboxEvent.event == RadarClickEvent.KIND))
    return int(n or 0)


def _hold_batches(s: Stack) -> None:
    # Rows nobody awaits wait (linger) for more before their batch; make that wait endless so
    # the test knows the clicks are still queued, not yet written, when it acts.
    s.runtime.inbox.writer._linger = 3600.0


def test_click_json_is_the_internal_event_json() -> None:
    at = datetime(2026, 11, 23, 4, 5, 6, 789000, tzinfo=UTC)
    payload = {"token_id": "ab" * 16, "material": "m-基金", "sender": "zhangwei", "occurrence": None,
               "customer": "wmA", "openid": None, "via": "token", "subject": ["customer", "wmA"]}
    raw = click_event_json(at.isoformat(), payload)
    fast = InternalEvent.model_validate_json(raw)
    assert fast == InternalEvent(source="radar", kind=RadarClickEvent.KIND, at=at, payload=payload)
    assert fast.at.tzinfo is not None
    typed = EventKinds([RadarClickEvent]).parse_json(raw)
    assert typed == RadarClickEvent(at=at, token_id="ab" * 16, material="m-基金", sender="zhangwei", customer="wmA",
                                    via="token", subject=("customer", "wmA"))
    assert isinstance(typed, RadarClickEvent) and typed.stored() == fast


async def test_graceful_stop_flushes_queued_clicks(sqlite_url: str, tmp_path: Path) -> None:
    async with stack(sqlite_url, tmp_path, materials=MATERIALS, routers=ROUTERS, customers=True, sections=radar()) as s:
        _hold_batches(s)
        link = s.links.make_link("m-fund", "zhangwei", customer=s.ids.customers["王芳"])
        for _ in range(7):
            assert await s.open(link) == (302, TARGET)  # answered while the click is only queued
        assert await _stored_clicks(s) == 0
        await asyncio.wait_for(s.runtime.inbox.writer.stop(), HANG_GUARD_S)
        assert await _stored_clicks(s) == 7


async def test_an_awaited_write_ends_the_wait_of_queued_clicks(db_url: str, tmp_path: Path) -> None:
    async with stack(db_url, tmp_path, materials=MATERIALS, routers=ROUTERS, customers=True, sections=radar()) as s:
        _hold_batches(s)
        link = s.links.make_link("m-fund", "zhangwei")
        for _ in range(3):
            assert (await s.open(link))[0] == 302
        event = InternalEvent(source="test", kind="test.ping", at=s.clock.now())
        assert await asyncio.wait_for(s.runtime.inbox.put_internal(event, "ping"), HANG_GUARD_S)
        assert await _stored_clicks(s) == 3


async def test_a_full_queue_drops_the_click_not_the_redirect(sqlite_url: str, tmp_path: Path,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    async with stack(sqlite_url, tmp_path, materials=MATERIALS, routers=ROUTERS, customers=True,
                     sections=radar(record_queue_max=2)) as s:
        _hold_batches(s)
        link = s.links.make_link("m-fund", "zhangwei")
        with caplog.at_level(logging.ERROR, logger="handlers.radar.http"):
            for _ in range(3):
                assert await s.open(link) == (302, TARGET)
        dropped = [r.message for r in caplog.records if r.name == "handlers.radar.http"]
        assert dropped == ["radar clicks not recorded: the write queue is full or stopped"]
        await asyncio.wait_for(s.runtime.inbox.writer.stop(), HANG_GUARD_S)
        assert await _stored_clicks(s) == 2
        # A stopped writer refuses too: still a redirect.
        assert await s.open(link) == (302, TARGET)
        assert await _stored_clicks(s) == 2
