"""SQLite has one writer: sessions of one process take turns on an asyncio lock from their first
write to the end of their transaction, instead of polling SQLite's busy handler."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import insert, select

from handlers.contacts.models import Member
from scrm.adapters.db.engine import make_engine, make_sessionmaker


async def test_writers_take_turns_and_a_failed_one_gives_its_turn_back(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    sessions = make_sessionmaker(engine)
    log: list[tuple[str, str]] = []

    async def writer(name: str, *, fail: bool = False, orm: bool = False) -> None:
        async with sessions() as s, s.begin():
            await s.execute(select(Member))
            if orm:
                s.add(Member(userid=name, name=name))
                await s.flush()
            else:
                await s.execute(insert(Member).values(userid=name, name=name))
            log.append(("wrote", name))
            assert s.lock.locked()  # type: ignore[attr-defined]  # this session's turn
            for _ in range(5):  # the transaction stays open over awaits (a WeCom call)
                await asyncio.sleep(0)
            log.append(("end", name))
            if fail:
                raise RuntimeError("handler failed")

    try:
        results = await asyncio.gather(writer("a"), writer("b", fail=True), writer("c", orm=True), writer("d"),
                                       return_exceptions=True)
        assert isinstance(results[1], RuntimeError) and results.count(None) == 3
        # Turns never overlap: each writer's write and end are adjacent in the log.
        assert [log[i][1] for i in range(0, len(log), 2)] == [log[i][1] for i in range(1, len(log), 2)]
        assert sorted(name for kind, name in log if kind == "wrote") == ["a", "b", "c", "d"]
        assert not sessions.class_.lock.locked()  # type: ignore[attr-defined]  # every turn ended
        async with sessions() as s:  # the failed one's turn was given back: the others committed
            assert sorted((await s.scalars(select(Member.userid))).all()) == ["a", "c", "d"]
    finally:
        await engine.dispose()


async def test_postgresql_sessions_are_plain(db_url: str) -> None:
    if not db_url.startswith("postgresql"):
        pytest.skip("the SQLite case is above")
    engine = make_engine(db_url)
    try:
        assert not hasattr(make_sessionmaker(engine)(), "lock")
    finally:
        await engine.dispose()
