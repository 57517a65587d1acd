"""A bank branch for SOP engine tests, on the test stack built with ``demo=False``.

The stack runs only the SOP handlers (``ROUTERS``) on the shipped playbook minus its calendars and
paths (``tests.support.playbooks.write_shipped_playbook``); ``seed`` puts members, a manager's
customers and groups both into the sandbox tenant and into the service's database.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from handlers.contacts.models import Customer, Follow, Member
from handlers.crm.models import CrmCustomer
from handlers.groups.models import GroupChat, GroupMember
from handlers.sop import handlers as sop_handlers
from scrm.kernel.dispatch import Router
from tests.support.stack import Stack

SH = ZoneInfo("Asia/Shanghai")
OLD = datetime(2026, 6, 1, tzinfo=UTC)
#: (userid, name, team lead)
MANAGERS: tuple[tuple[str, str, str | None], ...] = (("zhangwei", "张伟", "lead1"), ("lead1", "刘组长", None))
#: Only the SOP engine runs: no welcome, radar or CRM handler reacts to what a test does.
ROUTERS: list[Router] = [sop_handlers.router]


def local(day: str, hhmm: str) -> datetime:
    """A Shanghai wall-clock time as an aware datetime."""
    return datetime.fromisoformat(f"{day}T{hhmm}").replace(tzinfo=SH)


async def seed(s: Stack, *, managers: Iterable[tuple[str, str, str | None]] = MANAGERS,
               customers: Iterable[str] = (), manager: str = "zhangwei", added: datetime = OLD,
               groups: Iterable[tuple[str, str, datetime]] = (), crm: dict[str, dict[str, Any]] | None = None) -> None:
    """Members (userid, name, team lead), ``manager``'s customers, and groups (chat_id, type, created)."""
    st = s.state
    async with s.runtime.sessions() as session, session.begin():
        for userid, name, lead in managers:
            st.add_member(userid, name)
            session.add(Member(userid=userid, name=name, team_lead=lead))
        for ext in customers:
            st.add_customer(ext, external_userid=ext)
            st.add_follow(manager, ext, added.timestamp())
            session.add(Customer(external_userid=ext, name=ext, crm_id=f"crm-{ext}", updated_at=added))
            session.add(CrmCustomer(crm_id=f"crm-{ext}", attributes=(crm or {}).get(ext, {"name": ext}),
                                    updated_at=added))
            session.add(Follow(userid=manager, external_userid=ext, created_at=added,
                               last_contact_at=s.clock.now()))
        for chat_id, group_type, created in groups:
            st.create_group(manager, f"群{chat_id}", created.timestamp(), chat_id=chat_id)
            session.add(GroupChat(chat_id=chat_id, name=f"群{chat_id}", owner=manager, group_type=group_type,
                                  created_at=created, updated_at=created))
            session.add(GroupMember(chat_id=chat_id, member_id=manager, type=1, joined_at=created))
