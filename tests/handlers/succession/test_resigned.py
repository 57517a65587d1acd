"""离职继承 end to end against the sandbox: a manager is deleted in WeCom, her customers and
group are handed over by the rules within the slot, each new manager gets one card, the final
result of every transfer is recorded, and a second sweep changes nothing."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy import select

from handlers.sop.api import SopTask
from handlers.succession.events import SuccessionSweep
from handlers.succession.models import SuccessionBatch
from handlers.timeline.models import Timeline
from tests.handlers.succession.support import follows_of, items, mirror_follows, write_rules
from tests.support.stack import stack

RESIGNED = "externalcontact/resigned/transfer_customer"
GROUPS = "externalcontact/groupchat/transfer"


async def test_a_resigned_managers_customers_and_group_are_handed_over(db_url: str, tmp_path: Path) -> None:
    async with stack(db_url, tmp_path, customers=True) as s:
        write_rules(s)
        await mirror_follows(s)
        lina = {n: s.ids.customers[n] for n in ("孙丽", "周杰", "郑秀英")}
        group = s.ids.groups["银发兴趣群"]
        # an open card about 孙丽 waits with lina: it must follow the customer
        async with s.runtime.sessions() as session, session.begin():
            session.add(SopTask(task_id="t-sunli", key="reminder:x:sunli", userid="lina", target=lina["孙丽"],
                                source="reminder:x", title="理财到期", text="…", day=s.clock.now().date(),
                                status="open", created_at=s.clock.now()))
        await s.step()  # the start-up sweep: nobody has left yet
        assert s.calls(RESIGNED) == [] and await items(s) == []

        await s.driver.delete_user("lina")
        await s.run()
        s.clock.advance(60)  # the batch's first follow-up (30 s)
        await s.step()

        # Loads in lina's team (department 2): wangqiang follows 2 customers, zhangwei 4. Least
        # loaded first, counting what is assigned: wangqiang 2→3→4, then 4 vs 4 → wangqiang (by
        # userid); the group: wangqiang 5 vs zhangwei 4 → zhangwei.
        calls = s.calls(RESIGNED)
        assert [(c.body["handover_userid"], c.body["takeover_userid"], sorted(c.body["external_userid"]))
                for c in calls] == [("lina", "wangqiang", sorted(lina.values()))]
        assert [(c.body["chat_id_list"], c.body["new_owner_userid"]) for c in s.calls(GROUPS)] == [
            ([group], "zhangwei")]
        assert s.state.groups[group].owner == "zhangwei" and s.state.groups[group].status == 3
        got = {(i.target_type, i.target): (i.takeover_userid, i.status) for i in await items(s)}
        assert got == {**{("customer", e): ("wangqiang", "waiting") for e in lina.values()},
                       ("group", group): ("zhangwei", "done")}
        # one card each, at once (WeCom completes the customers within 24 h)
        assert len(s.cards("wangqiang")) == 1 and len(s.cards("zhangwei")) == 1
        card = s.cards("wangqiang")[0].card["sub_title_text"]
        assert "李娜的3位客户" in card and "孙丽" in card and "待办1" in card

        # WeCom takes them over after 24 h; the follow-up records it
        await s.run_until(s.clock.now() + timedelta(hours=25))
        assert {i.status for i in await items(s)} == {"done"}
        assert {e: st for e, st in (await follows_of(s, "wangqiang")).items() if e in lina.values()} == {
            e: "active" for e in lina.values()}
        assert await follows_of(s, "lina") == {e: "transferred" for e in lina.values()}
        assert {e for (u, e) in s.state.follows if u == "wangqiang"} >= set(lina.values())
        async with s.runtime.sessions() as session:
            task = await session.get(SopTask, "t-sunli")
            assert task is not None and task.userid == "wangqiang"
            assert (await session.scalars(select(SuccessionBatch.status))).all() == ["finished"]
            kinds = (await session.scalars(select(Timeline.subject_id).where(
                Timeline.kind == "succession.transferred"))).all()
            assert sorted(kinds) == sorted([*lina.values(), group])
        assert len(s.cards("wangqiang")) == 2  # the moved task card, sent to its new manager
        assert len(s.cards("zhangwei")) == 1

        # a second sweep changes nothing
        await s.runtime.inbox.put_internal(SuccessionSweep(at=s.clock.now()), "again")
        await s.step()
        assert len(s.calls(RESIGNED)) == 1 and len(s.calls(GROUPS)) == 1 and len(await items(s)) == 4


async def test_customers_of_members_who_left_before_the_service_are_swept_up(db_url: str, tmp_path: Path) -> None:
    async with stack(db_url, tmp_path, customers=True) as s:
        write_rules(s, "rules:\n  - handover: [zhangwei]\n    to: chenjing\n")
        await mirror_follows(s)
        # zhangwei left while nobody listened: no callback, only WeCom's unassigned list
        s.state.resign_member("zhangwei", s.clock.now().timestamp())
        await s.step()  # the start-up sweep
        s.clock.advance(60)
        await s.step()
        mine = sorted(e for (u, e) in s.state.follows if u == "zhangwei")
        assert [sorted(c.body["external_userid"]) for c in s.calls(RESIGNED)] == [mine]
        assert {c.body["takeover_userid"] for c in s.calls(RESIGNED)} == {"chenjing"}
        # two groups owned by zhangwei: nobody fits the rules (only a named successor) → chenjing too
        assert sorted(c.body["new_owner_userid"] for c in s.calls(GROUPS)) == ["chenjing"]
        assert len(s.cards("chenjing")) == 1


async def test_no_successor_is_recorded_and_not_retried_at_once(db_url: str, tmp_path: Path) -> None:
    async with stack(db_url, tmp_path, customers=True) as s:
        write_rules(s, "rules:\n  - handover: [nobody]\n    to: chenjing\n")
        await mirror_follows(s)
        await s.driver.delete_user("lina")
        await s.run()
        got = await items(s)
        assert len(got) == 4 and {i.status for i in got} == {"failed"}
        assert all("no successor" in i.reason for i in got)
        assert s.calls(RESIGNED) == []
        await s.runtime.inbox.put_internal(SuccessionSweep(at=s.clock.now()), "again")
        await s.step()
        assert len(await items(s)) == 4
