"""Linking a contact that appears to the CRM rows waiting for its unionid (one statement reads the
waiting rows and the contact's bindings): a waiting row is bound once, a row already bound to the
contact stays as it was, and a stronger binding of the same unionid to another contact is kept."""

from __future__ import annotations

from sqlalchemy import select

from handlers.crm.identity import EXPLICIT, UNIONID, link_contact
from handlers.crm.models import Binding, CrmCustomer
from scrm.kernel.clock import FakeClock
from tests.conftest import make_settings
from tests.support.service import running_service


async def test_waiting_rows_bind_once_and_stronger_bindings_stay(db_url: str) -> None:
    clock = FakeClock()
    async with running_service(make_settings(db_url), clock=clock) as (runtime, _):
        first = clock.now()
        async with runtime.sessions() as s, s.begin():
            s.add_all([CrmCustomer(crm_id="C1", unionid="u-1", updated_at=first),
                       CrmCustomer(crm_id="C2", unionid="u-1", updated_at=first),   # the bank bound it elsewhere
                       CrmCustomer(crm_id="C3", unionid="u-3", updated_at=first),   # another customer's
                       Binding(crm_id="C2", external_userid="wm-other", source=EXPLICIT, bound_at=first),
                       Binding(crm_id="C9", external_userid="wm-1", source=EXPLICIT, bound_at=first)])
        async with runtime.sessions() as s, s.begin():
            linked = await link_contact(s, "wm-1", "u-1", first)
        assert sorted(linked) == ["C1", "C9"]  # C1 newly, C9 already; C2 stays with its explicit binding
        clock.advance(60)
        async with runtime.sessions() as s, s.begin():
            again = await link_contact(s, "wm-1", "u-1", clock.now())   # the contact re-read later
            without = await link_contact(s, "wm-1", None, clock.now())  # no unionid: its bindings only
        assert sorted(again) == sorted(without) == ["C1", "C9"]
        async with runtime.sessions() as s:
            bindings = {b.crm_id: (b.external_userid, b.source, b.bound_at)
                        for b in (await s.scalars(select(Binding))).all()}
        # The second link changed nothing: C1 is still bound as of the first.
        assert bindings == {"C1": ("wm-1", UNIONID, first), "C2": ("wm-other", EXPLICIT, first),
                            "C9": ("wm-1", EXPLICIT, first)}
