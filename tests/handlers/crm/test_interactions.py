"""Interactions the CRM reports (``interaction.call``, ``interaction.visit``) over the push API and
files: contact between the customer and their manager, as of the event's own time."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from handlers.contacts.models import Follow
from handlers.crm.importer import import_file
from handlers.sop.models import SopTask
from tests.handlers.crm.receiver import CrmStack, crm_stack


async def contacts(c: CrmStack, ext: str) -> dict[str, datetime | None]:
    async with c.s.runtime.sessions() as session:
        rows = (await session.execute(select(Follow.userid, Follow.last_contact_at)
                                      .where(Follow.external_userid == ext))).all()
    return {u: at for u, at in rows}


def event(event_id: str, kind: str, at: datetime, **payload: str) -> dict[str, object]:
    return {"event_id": event_id, "crm_id": "C001", "kind": kind, "at": at.isoformat(), "payload": payload}


async def test_calls_and_visits_record_contact_forward_only(db_url: str, tmp_path: Path) -> None:
    async with crm_stack(db_url, tmp_path) as c:
        s = c.s
        wang = s.ids.customers["王芳"]
        status, _ = await c.post("/crm/v1/customers:batchUpsert",
                                 {"customers": [{"crm_id": "C001", "external_userid": wang}]})
        assert status == 200
        await s.run()
        managers = await contacts(c, wang)
        assert managers and set(managers.values()) == {None}
        now = s.clock.now()
        # A call by zhangwei yesterday: his relation only.
        called = (now - timedelta(days=1)).replace(microsecond=0)
        status, body = await c.post("/crm/v1/events", {"events": [event("call-1", "interaction.call", called,
                                                                         userid="zhangwei")]})
        assert status == 200 and body["new_events"] == 1
        await s.run()
        after_call = await contacts(c, wang)
        assert after_call["zhangwei"] == called
        assert all(at is None for u, at in after_call.items() if u != "zhangwei")
        # An older visit reported late never moves contact back; the same event again is a duplicate.
        status, body = await c.post("/crm/v1/events", {"events": [
            event("visit-1", "interaction.visit", called - timedelta(days=5), userid="zhangwei"),
            event("call-1", "interaction.call", called, userid="zhangwei")]})
        assert status == 200 and body["new_events"] == 1
        await s.run()
        assert (await contacts(c, wang))["zhangwei"] == called
        # A branch visit without a manager named, from a file: every active manager of the customer;
        # a date in the future counts as now (it must not silence the reminder for months).
        visited = (now + timedelta(days=30)).replace(microsecond=0)
        f = tmp_path / "visits.csv"
        f.write_text(f"event_id,crm_id,kind,at,branch\nvisit-2,C001,interaction.visit,{visited.isoformat()},城西支行\n",
                     encoding="utf-8")
        report = await import_file(f, s.runtime.sessions, s.runtime.inbox, s.clock)
        assert report.stored == 1 and report.errors == []
        await s.run()
        assert set((await contacts(c, wang)).values()) == {now}
        # An interaction is no key event: no reminder card for it.
        async with s.runtime.sessions() as session:
            assert (await session.scalars(select(SopTask))).all() == []


async def test_unknown_interaction_kind_is_refused(db_url: str, tmp_path: Path) -> None:
    async with crm_stack(db_url, tmp_path) as c:
        status, body = await c.post("/crm/v1/events", {"events": [
            event("x-1", "interaction.email", c.s.clock.now())]})
        assert status == 400 and "events[0]: kind: " in body["details"][0]
        assert "interaction.call" in body["details"][0]
