"""Who may see a chat's panels. The page says which customer or group the chat is with (the
JS-SDK told it), but the server checks the signed-in member against its own mirror: only a
manager who follows the customer (an active follow relation), or the team lead of one who does,
sees a customer; only the owner or a staff member in the chat sees a group. Every other id —
someone else's customer, a made-up or unknown one — gets the same refusal, so the answer never
tells whether a customer exists."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.contacts.api import Follow, Member
from handlers.groups.api import GroupChat, GroupMember

# External userids (wm…/wo…) and chat ids (wr…) are URL-safe; anything else is not an id.
ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
STAFF = 1  # group_member.type of a corp member (2: an external contact)


def well_formed(ident: str) -> bool:
    return ID_RE.fullmatch(ident) is not None


@dataclass(frozen=True)
class CustomerAccess:
    """The viewer may see this customer; ``managers``: the relations they may act for (their
    own, or their team's), their own first."""

    viewer: str
    managers: tuple[str, ...]

    @property
    def own(self) -> bool:
        return self.viewer in self.managers


async def customer_access(db: AsyncSession, viewer: str, external_userid: str) -> CustomerAccess | None:
    rows = await db.execute(
        select(Follow.userid, Member.team_lead).outerjoin(Member, Member.userid == Follow.userid)
        .where(Follow.external_userid == external_userid, Follow.status == "active"))
    managers = sorted({userid for userid, lead in rows.all() if viewer in (userid, lead)},
                      key=lambda u: (u != viewer, u))
    return CustomerAccess(viewer, tuple(managers)) if managers else None


async def group_access(db: AsyncSession, viewer: str, chat_id: str) -> GroupChat | None:
    """The group, when the viewer owns it or is a staff member in it."""
    chat = await db.get(GroupChat, chat_id)
    if chat is None or chat.status != "active":
        return None
    if chat.owner == viewer:
        return chat
    member = await db.get(GroupMember, (chat_id, viewer))
    ok = member is not None and member.type == STAFF and member.left_at is None
    return chat if ok else None
