"""The local mirror of customers and follow relationships (member ↔ customer).

Writes only: the WeCom reads (externalcontact/get) happen in the handlers first. Follow status
is ours: ``active``, ``lost`` (the customer deleted the manager: churn), ``removed`` (the
manager deleted the customer), ``transferred`` (removed by 在职继承, not churn).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

from sqlalchemy import bindparam, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.contacts.models import Customer, Follow, Member
from handlers.tags.api import FollowTag
from scrm.adapters.db.engine import dialect_of, insert_ignore, table_of, upsert
from scrm.adapters.wecom.models import ExternalContact, FollowUser

# Tag types in follow_user.tags: 1 corp, 2 personal, 3 rule group. Personal tags are the
# member's own and not part of the corp catalog.
CORP_TAG_TYPES = (1, 3)

ACTIVE, LOST, REMOVED, TRANSFERRED = "active", "lost", "removed", "transferred"
# WeCom's add_way of a relation the corp assigned (管理员/负责人分配: 离职/在职继承): the new
# manager's relation after a handover says so, and growth figures do not count it as a new contact.
ASSIGNED_ADD_WAY = 202

# Statements of every added contact, built once on the tables (Core: no ORM session bookkeeping).
_FOLLOW_TAG = table_of(FollowTag)
_CLEAR_FOLLOW_TAGS = delete(_FOLLOW_TAG).where(_FOLLOW_TAG.c.userid == bindparam("u"),
                                               _FOLLOW_TAG.c.external_userid == bindparam("e"))
_MEMBER_NAME = select(table_of(Member).c.name).where(table_of(Member).c.userid == bindparam("u"))


def ts(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def corp_tag_ids(follow: FollowUser) -> list[str]:
    """The corp tag ids WeCom reports on one follow relation."""
    return [t.tag_id for t in follow.tags if t.tag_id and t.type in CORP_TAG_TYPES]


async def upsert_customer(session: AsyncSession, contact: ExternalContact, now: datetime) -> None:
    row = {"external_userid": contact.external_userid, "name": contact.name, "unionid": contact.unionid,
           "type": contact.type, "gender": contact.gender, "corp_name": contact.corp_name, "updated_at": now}
    await session.execute(upsert(dialect_of(session), table_of(Customer), ["external_userid"],
                                 ["name", "unionid", "type", "gender", "corp_name", "updated_at"]), row)


async def upsert_follow(session: AsyncSession, external_userid: str, follow: FollowUser, now: datetime) -> None:
    """The relation as WeCom describes it; (re)activates it (a customer may come back)."""
    row = {"userid": follow.userid, "external_userid": external_userid, "remark": follow.remark[:128],
           "description": follow.description[:512], "state": follow.state[:64], "add_way": follow.add_way,
           "created_at": ts(follow.createtime) if follow.createtime else now, "status": ACTIVE, "status_at": now,
           "status_reason": None}
    await session.execute(upsert(dialect_of(session), table_of(Follow), ["userid", "external_userid"],
                                 ["remark", "description", "state", "add_way", "created_at", "status", "status_at",
                                  "status_reason"]), row)


async def record_contact(session: AsyncSession, external_userid: str, at: datetime, *,
                         userid: str | None = None) -> int:
    """Manager and customer were in touch at ``at``: move ``last_contact_at`` forward, never back.

    ``userid`` names the manager; without it every active relation of the customer counts (an
    interaction the CRM reports without saying who). A relation not mirrored here changes
    nothing. Returns the relations moved forward.
    """
    follow = table_of(Follow)
    stmt = (update(follow)
            .where(follow.c.external_userid == external_userid,
                   (follow.c.last_contact_at.is_(None)) | (follow.c.last_contact_at < at))
            .values(last_contact_at=at))
    stmt = stmt.where(follow.c.userid == userid) if userid else stmt.where(follow.c.status == ACTIVE)
    result = await session.execute(stmt)
    return int(getattr(result, "rowcount", 0) or 0)


async def ensure_follow(session: AsyncSession, userid: str, external_userid: str, *, state: str,
                        created_at: datetime) -> None:
    """A minimal relation row when WeCom could not describe it (it may be gone already)."""
    row = {"userid": userid, "external_userid": external_userid, "state": state[:64], "created_at": created_at}
    await session.execute(insert_ignore(dialect_of(session), table_of(Follow), ["userid", "external_userid"]), row)


async def set_follow_tags(session: AsyncSession, userid: str, external_userid: str, tag_ids: Iterable[str],
                          now: datetime) -> None:
    """Replace the relation's tags with what WeCom reported."""
    ids = list(dict.fromkeys(tag_ids))
    if not ids:
        await clear_follow_tags(session, userid, external_userid)
        return
    await session.execute(delete(FollowTag).where(FollowTag.userid == userid,
                                                  FollowTag.external_userid == external_userid,
                                                  FollowTag.tag_id.not_in(ids)))
    await add_follow_tags(session, userid, external_userid, ids, now)


async def add_follow_tags(session: AsyncSession, userid: str, external_userid: str, tag_ids: Sequence[str],
                          now: datetime) -> None:
    rows = [{"userid": userid, "external_userid": external_userid, "tag_id": t, "added_at": now} for t in tag_ids]
    if rows:
        await session.execute(insert_ignore(dialect_of(session), table_of(FollowTag),
                                            ["userid", "external_userid", "tag_id"]), rows)


async def clear_follow_tags(session: AsyncSession, userid: str, external_userid: str) -> None:
    await session.execute(_CLEAR_FOLLOW_TAGS, {"u": userid, "e": external_userid})


async def get_follow(session: AsyncSession, userid: str, external_userid: str) -> Follow | None:
    stmt = select(Follow).where(Follow.userid == userid, Follow.external_userid == external_userid)
    return (await session.scalars(stmt)).first()


async def set_status(session: AsyncSession, userid: str, external_userid: str, status: str, reason: str,
                     at: datetime) -> None:
    """Mark the relation ``status`` (inserting it when we never saw it) and drop its tags."""
    await ensure_follow(session, userid, external_userid, state="", created_at=at)
    await session.execute(update(Follow).where(Follow.userid == userid, Follow.external_userid == external_userid)
                          .values(status=status, status_at=at, status_reason=reason[:128]))
    await clear_follow_tags(session, userid, external_userid)


async def customer_name(session: AsyncSession, external_userid: str) -> str:
    name = await session.scalar(select(Customer.name).where(Customer.external_userid == external_userid))
    return name or external_userid


async def customer_names(session: AsyncSession, external_userids: Sequence[str]) -> dict[str, str]:
    """Names of the customers we know among ``external_userids``."""
    if not external_userids:
        return {}
    rows = await session.execute(select(Customer.external_userid, Customer.name)
                                 .where(Customer.external_userid.in_(list(external_userids))))
    return {ext: name for ext, name in rows.all() if name}


async def member_name(session: AsyncSession, userid: str) -> str | None:
    name = await session.scalar(_MEMBER_NAME, {"u": userid})
    return name or None


async def channel_counts(session: AsyncSession) -> dict[str, dict[str, int]]:
    """Per channel key (``state``): relations by status, for ``scrm channels list``."""
    rows = await session.execute(select(Follow.state, Follow.status, func.count()).group_by(Follow.state,
                                                                                           Follow.status))
    out: dict[str, dict[str, int]] = {}
    for state, status, n in rows.all():
        out.setdefault(state, {})[status] = int(n)
    return out
