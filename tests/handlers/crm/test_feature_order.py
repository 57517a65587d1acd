"""Dispatch order is declared, and it matters: the CRM must see a tag-group rename before the tag
catalog does. The CRM reconciliation reads the group's old name from the mirror to know it was
a CRM-owned group; the tags feature then overwrites it with the new name. Listed the other way
round (what renaming a handler file used to do under alphabetical discovery), the rename goes
unnoticed and the CRM-owned group is never recreated.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from handlers.crm.importer import import_file
from scrm.kernel import deps
from scrm.kernel.dispatch import Dispatcher
from scrm.kernel.feature import routers_of
from scrm.main import FEATURES
from tests.handlers.crm.receiver import crm_stack


def test_declared_order_puts_crm_before_tags_and_the_timeline_last() -> None:
    names = [f.name for f in FEATURES]
    assert names.index("contacts") < names.index("crm") < names.index("tags")
    assert names[-1] == "timeline"


@pytest.mark.parametrize("order", ["declared", "tags_before_crm"])
async def test_a_renamed_crm_group_is_recreated_only_in_the_declared_order(db_url: str, tmp_path: Path,
                                                                         order: str) -> None:
    async with crm_stack(db_url, tmp_path) as c:
        s = c.s
        if order == "tags_before_crm":
            features = sorted(FEATURES, key=lambda f: (f.name != "tags", f.name == "timeline"))
            s.runtime.dispatcher = Dispatcher(routers_of(features), check=deps.mismatches)
        wang = s.ids.customers["王芳"]
        csv = tmp_path / "customers.csv"
        csv.write_text(f"crm_id,external_userid,tier\nC001,{wang},V2\n", encoding="utf-8")
        await import_file(csv, s.runtime.sessions, s.runtime.inbox, s.clock, chunk=2)
        await s.run()
        group = s.state.live_group_by_name("客户等级")
        assert group is not None

        s.clock.advance(5)
        await s.driver.edit_tag(group.group_id, "客户级别")  # an admin renames it in WeCom's console
        await s.run()
        recreated = s.state.live_group_by_name("客户等级")
        if order == "declared":
            assert recreated is not None and recreated.group_id != group.group_id
            assert "客户等级/V2" in c.tag_names("zhangwei", wang)
        else:
            assert recreated is None
