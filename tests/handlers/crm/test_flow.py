"""CRM ↔ WeCom over HTTP against the sandbox: import, write-back, removal, crash/resume, errors."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from handlers.crm import sync as sync_mod
from handlers.crm.importer import import_file
from handlers.crm.models import Binding, CrmCustomer, CrmEvent
from handlers.crm.runner import run_sync
from scrm.kernel.models import InboxEvent
from tests.handlers.crm.receiver import CrmStack, crm_stack


async def _import(c: CrmStack, path: Path) -> Any:
    rt = c.s.runtime
    return await import_file(path, rt.sessions, rt.inbox, c.s.clock, chunk=2)


def _mark_tag_pairs(c: CrmStack) -> Counter[tuple[str, str]]:
    return Counter((x.body["userid"], x.body["external_userid"]) for x in c.s.calls("externalcontact/mark_tag"))


async def test_import_tags_writeback_and_removal(db_url: str, tmp_path: Path) -> None:
    async with crm_stack(db_url, tmp_path) as c:
        s, ids = c.s, c.s.ids
        wang, liu = ids.customers["王芳"], ids.customers["刘洋"]
        # Mirror 刘洋 before he is linked: the manager's existing tags are the starting record.
        await s.driver.edit_external_contact("zhangwei", liu)
        await s.run()
        # A contact the CRM knows by unionid appears only after the import.
        s.state.add_customer("新客户", external_userid="wm-new-1", unionid="u-new-1")
        csv = tmp_path / "customers.csv"
        csv.write_text(
            "crm_id,unionid,external_userid,tier,products,aum\n"
            f"C001,,{wang},V2,payroll|wealth,120000\n"
            ",,,V1,,\n"                                   # line 3: no crm_id
            f"C002,,{liu},VIP,mortgage,800000\n"
            "C003,u-new-1,,V3,credit_card,1000,extra\n"   # line 5: too many cells
            "C004,u-new-1,,V3,credit_card,1000\n", encoding="utf-8")
        report = await _import(c, csv)
        assert report.stored == 3 and len(report.errors) == 2
        assert report.errors[0].startswith(f"{csv}:3: crm_id")
        assert report.errors[1] == f"{csv}:5: more cells than header columns"
        await s.run()
        assert c.tag_names("zhangwei", wang) == {"客户等级/V2", "产品持有/代发", "产品持有/理财", "资产规模/5万-50万"}
        assert c.tag_names("zhangwei", liu) == {"客户等级/VIP", "产品持有/按揭", "资产规模/50万以上", "兴趣/旅游"}
        assert s.state.live_group_by_name("资产规模") is not None  # created
        assert all(n == 1 for n in _mark_tag_pairs(c).values())
        # The waiting CRM row links when the contact is added, and gets its tags.
        await s.driver.add_external_contact("lina", "wm-new-1", welcome_code=False)
        await s.run()
        assert {"客户等级/V3", "产品持有/信用卡", "资产规模/5万以下"} <= c.tag_names("lina", "wm-new-1")
        # A manager's manual tag reaches the CRM webhook once (even delivered twice, with a 503).
        c.receiver.fail_next = 1
        s.clock.advance(5)  # WeCom dedups events by (type, ids, CreateTime): a new edit is a new second
        out = await s.driver.edit_external_contact("zhangwei", liu, add_tags=[ids.tags["兴趣/健康"]])
        await s.run()
        assert await s.redeliver(out) == 200
        await s.run()
        s.clock.advance(60)
        await s.run()
        assert len(c.receiver.received) == 1 and c.receiver.rejected == 0
        hook = c.receiver.received[0]
        assert hook["crm_id"] == "C002" and [t["name"] for t in hook["added"]] == ["兴趣/健康"]
        # CRM drops the mortgage: removed in WeCom; manager tags stay.
        status, body = await c.post("/crm/v1/customers:batchUpsert",
                                    {"customers": [{"crm_id": "C002", "attributes": {"products": None}}]})
        assert status == 200 and body["changed"] == 1
        await s.run()
        assert c.tag_names("zhangwei", liu) == {"客户等级/VIP", "资产规模/50万以上", "兴趣/旅游", "兴趣/健康"}
        # Nothing in the manager groups was ever removed by sync, and no webhook for sync's own changes.
        for call in s.calls("externalcontact/mark_tag"):
            for t in call.body.get("remove_tag", []):
                assert s.state.tag_groups[s.state.tags[t].group_id].group_name in {"客户等级", "产品持有", "资产规模"}
        assert len(c.receiver.received) == 1


async def test_crash_mid_sync_resumes_without_duplicates(db_url: str, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    async with crm_stack(db_url, tmp_path) as c:
        s = c.s
        customers = [{"crm_id": f"K{i}", "external_userid": ext, "attributes": {"tier": "V3", "products": ["pension"]}}
                     for i, ext in enumerate(s.ids.customers.values())]
        rt = s.runtime
        from handlers.crm import store
        from handlers.crm.records import CustomerRecord

        # Store without the incremental event so the run below does all the work.
        async with rt.sessions() as session, session.begin():
            await store.upsert_customers(session, rt.inbox, [CustomerRecord.model_validate(r) for r in customers],
                                         s.clock.now())
            await session.execute(InboxEvent.__table__.delete())
        from handlers.crm import discover

        async with rt.sessions() as session, session.begin():
            infos = await discover.read_unmirrored(session, s.wecom, [c["crm_id"] for c in customers])
            await discover.write_contacts(session, infos, s.clock.now())
        pb = rt.playbook.current
        real_apply = sync_mod.apply_chunk
        calls = {"n": 0}

        async def crashing_apply(*a: Any, **kw: Any) -> None:
            calls["n"] += 1
            if calls["n"] == 2:
                raise RuntimeError("power cut")
            await real_apply(*a, **kw)

        monkeypatch.setattr(sync_mod, "apply_chunk", crashing_apply)
        with pytest.raises(RuntimeError):
            await run_sync(rt.sessions, rt.outbox, s.wecom, pb.tag_groups, s.clock, "g1", chunk=3)
        monkeypatch.setattr(sync_mod, "apply_chunk", real_apply)
        first = len(await s.outbox_rows("externalcontact/mark_tag"))
        assert 0 < first < 10
        # The outbox worker dies after sending one call, before handing its outcome in for recording.
        real_hand_in = rt.outbox._hand_in
        died: list[int] = []

        def dying_hand_in(row: Any, outcome: Any) -> Any:
            if not died:
                died.append(row["id"])
                raise RuntimeError("worker killed")
            return real_hand_in(row, outcome)

        monkeypatch.setattr(rt.outbox, "_hand_in", dying_hand_in)
        with pytest.raises(RuntimeError):
            await rt.outbox.process_due()
        monkeypatch.setattr(rt.outbox, "_hand_in", real_hand_in)
        assert died
        # Resume: run again (same generation), let leases expire, send everything.
        resumed, _ = await run_sync(rt.sessions, rt.outbox, s.wecom, pb.tag_groups, s.clock, "g1", chunk=3)
        assert resumed.calls == 10 - first  # the finished chunk planned nothing again
        s.clock.advance(rt.settings.outbox.lease_s + 1)
        await s.run()
        rows = await s.outbox_rows("externalcontact/mark_tag")
        assert len(rows) == 10 and all(r.status == "sent" for r in rows)  # 8 customers, 2 have two managers
        assert set(_mark_tag_pairs(c).values()) == {1}  # one call per relation, crash or not
        for (userid, ext) in _mark_tag_pairs(c):
            assert {"客户等级/V3", "产品持有/养老金"} <= c.tag_names(userid, ext)
        # A second full run finds nothing to do.
        again, _ = await run_sync(rt.sessions, rt.outbox, s.wecom, pb.tag_groups, s.clock, "g2", chunk=3)
        assert again.scanned == 10 and again.calls == 0


async def test_api_rejects_bad_input_and_keeps_nothing(db_url: str, tmp_path: Path) -> None:
    async with crm_stack(db_url, tmp_path) as c:
        ok = {"customers": [{"crm_id": "A1", "attributes": {"tier": "V1"}}]}
        assert (await c.post("/crm/v1/customers:batchUpsert", ok, secret="wrong"))[0] == 401
        now = int(c.s.clock.now().timestamp())
        status, body = await c.post("/crm/v1/customers:batchUpsert", ok, ts=now - 3600)
        assert status == 401 and "stale timestamp" in body["error"]
        status, body = await c.post("/crm/v1/events", None, raw=b"{not json")
        assert status == 400 and "not JSON" in body["error"]
        bad = {"customers": [{"crm_id": "A2"}, {"attributes": {}}, {"crm_id": "A3", "oops": 1}]}
        status, body = await c.post("/crm/v1/customers:batchUpsert", bad)
        assert status == 400 and body["details"][0].startswith("customers[1]: crm_id")
        assert body["details"][1].startswith("customers[2]: oops")
        resp = await c.s.client.post("/crm/v1/bindings", data=b"{}")
        assert resp.status == 401
        async with c.s.runtime.sessions() as session:
            assert await session.scalar(select(func.count()).select_from(CrmCustomer)) == 0
        # Valid requests are stored: customers, an explicit binding, key events (once each).
        assert (await c.post("/crm/v1/customers:batchUpsert", ok))[0] == 200
        ext = c.s.ids.customers["赵敏"]
        assert (await c.post("/crm/v1/bindings", {"bindings": [{"crm_id": "A1", "external_userid": ext}]}))[0] == 200
        event = {"event_id": "E1", "crm_id": "A1", "kind": "large_transfer", "at": "2026-11-01T09:30:00+08:00",
                 "payload": {"amount": 500000}}
        status, body = await c.post("/crm/v1/events", {"events": [event, event]})
        assert status == 200 and body["new_events"] == 1
        assert (await c.post("/crm/v1/events", {"events": [event]}))[1]["new_events"] == 0
        async with c.s.runtime.sessions() as session:
            assert await session.scalar(select(func.count()).select_from(CrmEvent)) == 1
            binding = await session.get(Binding, "A1")
            assert binding is not None and binding.source == "explicit"
            kinds = (await session.scalars(select(InboxEvent.event))).all()
        assert sorted(kinds) == ["crm.changed", "crm.changed", "crm.event"]
        await c.s.run()
        assert "客户等级/V1" in c.tag_names("zhangwei", ext)
