"""The CRM and backfilled contacts: rows waiting for a contact by unionid are linked when it is
backfilled and get their tags in the next sync (10 of 10); a manager's edits on backfilled
relations reach the CRM exactly (added and removed as they really changed); a relation whose
earlier tags were never known reports its whole set, claiming no change."""

from __future__ import annotations

import random
from pathlib import Path

from sqlalchemy import func, select

from handlers.backfill.runner import run_backfill
from handlers.crm.api import Binding
from tests.handlers.backfill.support import context, seed
from tests.handlers.crm.receiver import CrmStack, crm_stack


async def _import_by_unionid(c: CrmStack, unionids: list[str]) -> None:
    customers = [{"crm_id": f"CRM{i:03d}", "unionid": u, "attributes": {"tier": "V2", "products": ["payroll"]}}
                 for i, u in enumerate(unionids)]
    status, body = await c.post("/crm/v1/customers:batchUpsert", {"customers": customers})
    assert status == 200, body
    await c.s.run()


async def test_unionid_only_rows_are_linked_and_tagged(db_url: str, tmp_path: Path) -> None:
    async with crm_stack(db_url, tmp_path) as c:
        s = c.s
        seeded = seed(s, 10, members=2, shared_every=0)
        await _import_by_unionid(c, [seeded.unionids[e] for e in seeded.customers])
        async with s.runtime.sessions() as session:
            assert await session.scalar(select(func.count()).select_from(Binding)) == 0  # nothing to link to yet
        await run_backfill(context(s), trigger="start")
        await s.run()  # the next sync: the incremental one the backfill queued
        tagged = [e for e in seeded.customers
                  if {"客户等级/V2", "产品持有/代发"} <= c.tag_names(seeded.members[seeded.customers.index(e) % 2], e)]
        assert len(tagged) == 10
        async with s.runtime.sessions() as session:
            bound = dict((await session.execute(select(Binding.crm_id, Binding.external_userid))).all())
        assert bound == {f"CRM{i:03d}": e for i, e in enumerate(seeded.customers)}


def _names(c: CrmStack, ids: set[str]) -> set[str]:
    st = c.s.state
    return {f"{st.tag_groups[st.tags[t].group_id].group_name}/{st.tags[t].name}" for t in ids}


async def test_manager_edits_on_backfilled_relations_reach_the_crm_exactly(db_url: str, tmp_path: Path) -> None:
    async with crm_stack(db_url, tmp_path) as c:
        s = c.s
        seeded = seed(s, 20, members=2, tags=10, tags_per_relation=3, shared_every=0)
        await _import_by_unionid(c, [seeded.unionids[e] for e in seeded.customers])
        await run_backfill(context(s), trigger="start")
        await s.run()
        manager_tags = set(seeded.tags)  # the seeded library: none of it is in the CRM's tag map
        rng = random.Random(12)
        expected: dict[str, tuple[set[str], set[str]]] = {}
        for i, ext in enumerate(seeded.customers):
            userid = seeded.members[i % 2]
            relation = s.state.follow(userid, ext)
            assert relation is not None
            before = set(relation.tag_ids) & manager_tags
            # a mix: tags it already has (re-added), new ones, removals — as a manager clicks
            add = set(rng.sample(sorted(before), 1)) | set(rng.sample(sorted(manager_tags - before), rng.randint(0, 2)))
            remove = set(rng.sample(sorted(before), rng.randint(0 if i % 3 else 1, 1)))
            after = (before | add) - remove
            expected[ext] = (after - before, before - after)
            s.clock.advance(5)
            await s.driver.edit_external_contact(userid, ext, add_tags=sorted(add), remove_tags=sorted(remove))
            await s.run()
            assert set(relation.tag_ids) & manager_tags == after  # the sandbox did what the manager did
        s.clock.advance(60)
        await s.run()
        got = {h["external_userid"]: ({t["name"] for t in h["added"]}, {t["name"] for t in h["removed"]})
               for h in c.receiver.received}
        want = {ext: (_names(c, a), _names(c, r)) for ext, (a, r) in expected.items() if a or r}
        assert len(want) >= 15  # most edits change something
        assert got == want
        assert not any(h.get("baseline") for h in c.receiver.received)


async def test_an_edit_on_a_relation_never_known_claims_no_change(sqlite_url: str, tmp_path: Path) -> None:
    async with crm_stack(sqlite_url, tmp_path) as c:
        s = c.s
        seeded = seed(s, 1, members=1, tags=5, tags_per_relation=2)
        userid, ext = seeded.members[0], seeded.customers[0]
        await _import_by_unionid(c, [seeded.unionids[ext]])
        # no backfill: WeCom's callback is the first the service hears of this relation
        async with s.runtime.sessions() as session, session.begin():
            session.add(Binding(crm_id="CRM000", external_userid=ext, source="explicit", bound_at=s.clock.now()))
        await s.driver.edit_external_contact(userid, ext, add_tags=[seeded.tags[4]])
        await s.run()
        s.clock.advance(60)
        await s.run()
        [hook] = c.receiver.received
        assert hook["baseline"] is True and hook["added"] == [] and hook["removed"] == []
        relation = s.state.follow(userid, ext)
        assert relation is not None
        assert {t["tag_id"] for t in hook["tags"]} == set(relation.tag_ids)


async def test_a_contact_the_crm_binds_before_any_backfill_starts_its_record_too(sqlite_url: str,
                                                                                tmp_path: Path) -> None:
    """The CRM's own discovery (a binding to a contact never mirrored) reads the relation from
    WeCom: its tags start the write-back record, so the manager's first edit is exact."""
    async with crm_stack(sqlite_url, tmp_path) as c:
        s = c.s
        seeded = seed(s, 1, members=1, tags=5, tags_per_relation=2)
        userid, ext = seeded.members[0], seeded.customers[0]
        status, body = await c.post("/crm/v1/bindings", {"bindings": [{"crm_id": "CRM900", "external_userid": ext}]})
        assert status == 200, body
        await s.run()
        relation = s.state.follow(userid, ext)
        assert relation is not None
        had = list(relation.tag_ids)
        new = next(t for t in seeded.tags if t not in had)
        s.clock.advance(5)
        await s.driver.edit_external_contact(userid, ext, add_tags=[new], remove_tags=[had[0]])
        await s.run()
        s.clock.advance(60)
        await s.run()
        [hook] = c.receiver.received
        assert [t["tag_id"] for t in hook["added"]] == [new] and [t["tag_id"] for t in hook["removed"]] == [had[0]]
        assert "baseline" not in hook
