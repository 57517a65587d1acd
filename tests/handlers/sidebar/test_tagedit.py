"""Editing a customer's tags from the 1:1 panel, on SQLite and PostgreSQL: only the tag map's
manager-owned groups are offered and accepted, an edit goes to WeCom as one mark_tag through the
outbox (once per tap, however often the page sends it), the mirror and the panel show it, the
CRM hears the manager-owned change through its write-back, and it is on the timeline and in the
audit log — but it is no contact."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from sqlalchemy import select

from handlers.console.models import ConsoleAudit
from handlers.contacts.models import Follow
from handlers.crm.models import CrmWritebackState
from handlers.timeline.models import Timeline
from tests.handlers.sidebar.support import ADDED, csrf_of, seed, sidebar_stack, sign_in
from tests.support.playbooks import REPO
from tests.support.stack import Stack

MARK_TAG = "externalcontact/mark_tag"
HOOK = {"crm": {"webhook_url": "http://127.0.0.1:9/crm-hook"}}  # nothing listens: the row stays queued


def tag_map() -> dict[str, Any]:
    """The shipped tag map as written (read here, not through the playbook loader under test)."""
    groups: dict[str, Any] = YAML(typ="safe").load((REPO / "sop" / "tags.yaml").read_text())["groups"]
    return groups


async def data(s: Stack, path: str) -> dict[str, Any]:
    resp = await s.client.get(path)
    assert resp.status == 200, await resp.text()
    body: dict[str, Any] = json.loads(await resp.text())
    return body


async def edit(s: Stack, ext: str, body: Any, token: str) -> tuple[int, dict[str, Any]]:
    resp = await s.client.post(f"/sidebar/customer/{ext}/tags", json=body, headers={"X-CSRF-Token": token})
    return resp.status, await resp.json()


async def test_the_panel_offers_the_manager_owned_groups_only(db_url: str, tmp_path: Path) -> None:
    async with sidebar_stack(db_url, tmp_path) as s:
        demo = await seed(s)
        await sign_in(s, "zhangwei")
        editor = (await data(s, f"/sidebar/data/customer/{demo.wangfang}"))["tag_editor"]
        groups = tag_map()
        # She carries 兴趣/理财 (and 兴趣/旅游, a tag since deleted in WeCom: not on).
        assert editor == {
            "relation": "zhangwei",
            "groups": [{"group": g, "tags": [{"name": f"{g}/{t}", "tag": t, "on": f"{g}/{t}" == "兴趣/理财"}
                                             for t in spec["tags"]]}
                       for g, spec in groups.items() if spec["owner"] == "manager"],
            "crm_groups": [g for g, spec in groups.items() if spec["owner"] == "crm"]}
        html = await (await s.client.get(f"/sidebar/customer/{demo.wangfang}")).text()
        assert 'data-tag="兴趣/健康" aria-pressed="false"' in html
        assert 'data-tag="兴趣/理财" aria-pressed="true"' in html
        assert 'data-tag="客户等级/' not in html


async def test_an_edit_goes_to_wecom_the_mirror_and_the_crm(db_url: str, tmp_path: Path) -> None:
    async with sidebar_stack(db_url, tmp_path, sections=HOOK) as s:
        demo = await seed(s)
        ids = s.ids.tags
        wangfang = demo.wangfang
        async with s.runtime.sessions() as db, db.begin():  # what the CRM was last told (manager-owned tags)
            db.add(CrmWritebackState(userid="zhangwei", external_userid=wangfang,
                                     tag_ids=sorted([ids["兴趣/理财"], ids["兴趣/旅游"]]), reported_at=ADDED))
        await sign_in(s, "zhangwei")
        change = {"add": ["兴趣/健康"], "remove": ["兴趣/理财"], "edit": "tap1"}
        path = f"/sidebar/customer/{wangfang}/tags"
        assert (await s.client.post(path, json=change)).status == 403  # no CSRF token
        token = await csrf_of(s)
        refused = [
            ({"add": ["客户等级/V2"], "edit": "t"}, 400, "由CRM同步维护"),
            ({"remove": ["客户等级/V1"], "edit": "t"}, 400, "由CRM同步维护"),
            ({"add": ["兴趣/钓鱼"], "edit": "t"}, 400, "不在可编辑的标签组里"),
            ({"add": ["无此组/x"], "edit": "t"}, 400, "不在可编辑的标签组里"),
            ({"add": ["兴趣/健康"]}, 400, "body must be JSON"),
            ({"add": [], "remove": [], "edit": "t"}, 400, "nothing to change"),
            ({"add": ["兴趣/健康"], "remove": ["兴趣/健康"], "edit": "t"}, 400, "added and removed"),
            ({"add": ["兴趣/健康"], "edit": "a b"}, 400, "edit must be"),
        ]
        for body, status, reason in refused:
            got = await edit(s, wangfang, body, token)
            assert got[0] == status and reason in got[1]["error"], body
        assert await s.outbox_rows(MARK_TAG) == []

        s.clock.advance(minutes=3)
        status, reply = await edit(s, wangfang, change, token)
        assert status == 200, reply
        assert reply == {"relation": "zhangwei", "added": ["兴趣/健康"], "removed": ["兴趣/理财"], "repeated": False,
                         "tags": ["客户等级/V1", "兴趣/健康"]}
        (row,) = await s.outbox_rows(MARK_TAG)
        assert row.payload["body"] == {"userid": "zhangwei", "external_userid": wangfang,
                                       "add_tag": [ids["兴趣/健康"]], "remove_tag": [ids["兴趣/理财"]]}
        # The CRM hears the change since its last report: one added, one removed.
        async with s.runtime.sessions() as db:
            hooks = [r.payload["body"] for r in (await s.outbox_rows()) if r.kind == "crm.webhook"]
        assert [(h["type"], h["crm_id"], h["added"], h["removed"], "baseline" in h) for h in hooks] == [
            ("tags.changed", "crm-wangfang", [{"tag_id": ids["兴趣/健康"], "name": "兴趣/健康"}],
             [{"tag_id": ids["兴趣/理财"], "name": "兴趣/理财"}], False)]

        # The same tap sent again (a retry) changes nothing more.
        again = await edit(s, wangfang, change, token)
        assert again == (200, {"relation": "zhangwei", "added": [], "removed": [], "repeated": True,
                               "tags": ["客户等级/V1", "兴趣/健康"]})
        assert len(await s.outbox_rows(MARK_TAG)) == 1

        # WeCom gets it: her tags in WeCom's state.
        await s.send()
        in_wecom = s.tag_ids("zhangwei", wangfang)
        assert ids["兴趣/健康"] in in_wecom and ids["兴趣/理财"] not in in_wecom

        async with s.runtime.sessions() as db:
            entries = (await db.scalars(select(Timeline).where(Timeline.subject_id == wangfang,
                                                               Timeline.kind == "sidebar.tags"))).all()
            audit = (await db.scalars(select(ConsoleAudit).where(ConsoleAudit.action == "sidebar_tags"))).all()
            contact = await db.scalar(select(Follow.last_contact_at).where(
                Follow.userid == "zhangwei", Follow.external_userid == wangfang))
        assert [(e.detail["manager"], e.detail["added"], e.detail["removed"]) for e in entries] == [
            ("zhangwei", ["兴趣/健康"], ["兴趣/理财"])]
        assert [(a.actor, a.target, a.detail["added"], a.detail["removed"]) for a in audit] == [
            ("zhangwei", f"customer:{wangfang}", ["兴趣/健康"], ["兴趣/理财"])]
        assert contact is None  # a tag edit is not a contact: the customer saw nothing
        panel = await data(s, f"/sidebar/data/customer/{wangfang}")
        assert panel["who"]["tags"] == ["客户等级/V1", "兴趣/健康"]
        assert panel["history"][0]["line"] == "张伟修改了标签：+兴趣/健康、-兴趣/理财"

        # Someone else's customer: refused, nothing queued.
        await sign_in(s, "lina")
        other = await edit(s, wangfang, {"add": ["兴趣/旅游"], "edit": "tap2"}, await csrf_of(s))
        assert other[0] == 403 and len(await s.outbox_rows(MARK_TAG)) == 1


async def test_a_team_lead_edits_the_team_members_relation_and_a_missing_tag_is_created(
        db_url: str, tmp_path: Path) -> None:
    async with sidebar_stack(db_url, tmp_path) as s:
        demo = await seed(s)
        await sign_in(s, "wangqiang")
        # 兴趣/亲子 is in the tag map but neither in the mirror nor in WeCom yet: WeCom creates it.
        assert not [t for t in s.state.tags.values() if t.name == "亲子"]
        status, reply = await edit(s, demo.wangfang, {"add": ["兴趣/亲子"], "edit": "lead1"}, await csrf_of(s))
        assert status == 200 and reply["relation"] == "zhangwei" and reply["added"] == ["兴趣/亲子"]
        await s.send()
        (created,) = [t for t in s.state.tags.values() if t.name == "亲子" and not t.deleted]
        assert created.id in s.tag_ids("zhangwei", demo.wangfang)
        async with s.runtime.sessions() as db:
            audit = (await db.scalars(select(ConsoleAudit).where(ConsoleAudit.action == "sidebar_tags"))).all()
        assert [(a.actor, a.detail["relation"]) for a in audit] == [("wangqiang", "zhangwei")]
