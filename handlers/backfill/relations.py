"""Write one page of ``batch/get_by_user`` into the customer mirror without undoing a callback.

The page was read at ``read_at``; a callback may have been handled since (a deletion, an edit, a
new contact). Every relation row carries ``status_at``, the time its state was last established:
a callback sets it when it runs (contacts' handlers), the backfill sets it to the page's
``read_at``. So the rule is one comparison, made per row and again inside each guarded UPDATE:

- no row yet: insert it (``INSERT … ON CONFLICT DO NOTHING``: a callback inserting meanwhile wins);
- a row older than the page (``status_at < read_at``): the page is newer, it replaces the row
  and its tags (tags a callback added after ``read_at`` are kept: ``follow_tag.added_at``);
- a row as new as the page or newer: left alone, counted as skipped.

The rows this page really wrote are found afterwards by their ``status_at == read_at`` mark, so
a row a callback took between our read and our write is never given the page's tags. On
PostgreSQL the page's existing rows are locked (``FOR UPDATE``) while it is written; on SQLite the
page's transaction starts with a write (its position, :mod:`handlers.backfill.paging`), which
takes the database's only write lock before anything is compared.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import bindparam, delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.contacts.api import Customer, Follow
from handlers.tags.api import FollowTag
from scrm.adapters.db.engine import dialect_of, insert_ignore, table_of
from scrm.adapters.wecom.models import ExternalContactFollow

ACTIVE = "active"
Pair = tuple[str, str]  # (userid, external_userid)

_CUSTOMER, _FOLLOW, _FOLLOW_TAG = table_of(Customer), table_of(Follow), table_of(FollowTag)
_CUSTOMER_FIELDS = ("name", "unionid", "type", "gender", "corp_name")
_FOLLOW_FIELDS = ("remark", "description", "state", "add_way", "created_at")

# Built once (bind parameters, run as executemany): the page is newer than the row, or the row wins.
_UPDATE_CUSTOMER = (update(_CUSTOMER)
                    .where(_CUSTOMER.c.external_userid == bindparam("k_ext"),
                           _CUSTOMER.c.updated_at < bindparam("k_at"))
                    .values({c: bindparam(f"v_{c}") for c in _CUSTOMER_FIELDS} | {"updated_at": bindparam("k_at")}))
_UPDATE_FOLLOW = (update(_FOLLOW)
                  .where(_FOLLOW.c.userid == bindparam("k_u"), _FOLLOW.c.external_userid == bindparam("k_ext"),
                         or_(_FOLLOW.c.status_at.is_(None), _FOLLOW.c.status_at < bindparam("k_at")))
                  .values({c: bindparam(f"v_{c}") for c in _FOLLOW_FIELDS}
                          | {"status": ACTIVE, "status_at": bindparam("k_at"), "status_reason": None}))
_DELETE_TAG = delete(_FOLLOW_TAG).where(_FOLLOW_TAG.c.userid == bindparam("k_u"),
                                        _FOLLOW_TAG.c.external_userid == bindparam("k_ext"),
                                        _FOLLOW_TAG.c.tag_id == bindparam("k_tag"))


@dataclass
class Written:
    """What one page did: the relations it wrote (with their corp tag ids), those a newer
    callback had written already, and every contact of the page with its unionid."""

    relations: list[tuple[str, str, tuple[str, ...]]] = field(default_factory=list)
    skipped: int = 0
    contacts: dict[str, str | None] = field(default_factory=dict)  # external_userid → unionid


def _ts(seconds: int, default: datetime) -> datetime:
    return datetime.fromtimestamp(seconds, UTC) if seconds else default


async def write_relations(session: AsyncSession, items: Sequence[ExternalContactFollow],
                          read_at: datetime) -> Written:
    """Mirror one page read at ``read_at`` (see the module's rule); the caller's transaction."""
    out = Written()
    page: dict[Pair, ExternalContactFollow] = {}
    for item in items:
        ext = item.external_contact.external_userid
        page[(item.follow_info.userid, ext)] = item
        out.contacts[ext] = item.external_contact.unionid
    if not page:
        return out
    exts = list(out.contacts)
    await _write_customers(session, items, exts, read_at)
    mine, known = await _write_follows(session, page, exts, read_at)
    out.skipped = len(page) - len(mine)
    await _write_tags(session, page, mine, known, read_at)
    out.relations = [(u, e, tuple(dict.fromkeys(page[(u, e)].follow_info.tag_id))) for u, e in mine]
    return out


async def _write_customers(session: AsyncSession, items: Sequence[ExternalContactFollow], exts: list[str],
                           read_at: datetime) -> None:
    """Insert the new customers, refresh those older than the page."""
    contacts = {i.external_contact.external_userid: i.external_contact for i in items}
    known = set((await session.scalars(select(_CUSTOMER.c.external_userid)
                                       .where(_CUSTOMER.c.external_userid.in_(exts)))).all())
    fresh = [{"external_userid": ext, "name": c.name, "unionid": c.unionid, "type": c.type, "gender": c.gender,
              "corp_name": c.corp_name, "updated_at": read_at} for ext, c in contacts.items() if ext not in known]
    if fresh:
        await session.execute(insert_ignore(dialect_of(session), _CUSTOMER, ["external_userid"]), fresh)
    older = [{"k_ext": ext, "k_at": read_at, "v_name": c.name, "v_unionid": c.unionid, "v_type": c.type,
              "v_gender": c.gender, "v_corp_name": c.corp_name} for ext, c in contacts.items() if ext in known]
    if older:
        await session.execute(_UPDATE_CUSTOMER, older)


async def _write_follows(session: AsyncSession, page: dict[Pair, ExternalContactFollow], exts: list[str],
                         read_at: datetime) -> tuple[list[Pair], set[Pair]]:
    """Insert the new relations, replace the older ones; returns the pairs this page wrote, and
    those that existed before it."""
    rows = await session.execute(select(_FOLLOW.c.userid, _FOLLOW.c.external_userid, _FOLLOW.c.status_at)
                                 .where(_FOLLOW.c.external_userid.in_(exts)).with_for_update())
    existing: dict[Pair, datetime | None] = {(u, e): at for u, e, at in rows.all() if (u, e) in page}
    newer = {pair for pair, at in existing.items() if at is not None and at >= read_at}
    fresh = [_follow_row(pair, page[pair], read_at) for pair in page if pair not in existing]
    if fresh:
        await session.execute(insert_ignore(dialect_of(session), _FOLLOW, ["userid", "external_userid"]), fresh)
    older = [_follow_update(pair, page[pair], read_at) for pair in existing if pair not in newer]
    if older:
        await session.execute(_UPDATE_FOLLOW, older)
    # Ours are the rows carrying this page's mark now (an insert a callback beat was ignored, an
    # update whose guard failed changed nothing).
    marked = await session.execute(select(_FOLLOW.c.userid, _FOLLOW.c.external_userid)
                                   .where(_FOLLOW.c.external_userid.in_(exts), _FOLLOW.c.status_at == read_at,
                                          _FOLLOW.c.status == ACTIVE))
    return [pair for pair in ((u, e) for u, e in marked.all()) if pair in page and pair not in newer], set(existing)


def _follow_values(item: ExternalContactFollow, read_at: datetime) -> dict[str, Any]:
    info = item.follow_info
    return {"remark": info.remark[:128], "description": info.description[:512], "state": info.state[:64],
            "add_way": info.add_way, "created_at": _ts(info.createtime, read_at)}


def _follow_row(pair: Pair, item: ExternalContactFollow, read_at: datetime) -> dict[str, Any]:
    return {"userid": pair[0], "external_userid": pair[1], **_follow_values(item, read_at), "status": ACTIVE,
            "status_at": read_at, "status_reason": None}


def _follow_update(pair: Pair, item: ExternalContactFollow, read_at: datetime) -> dict[str, Any]:
    values = {f"v_{k}": v for k, v in _follow_values(item, read_at).items()}
    return {"k_u": pair[0], "k_ext": pair[1], "k_at": read_at, **values}


async def _write_tags(session: AsyncSession, page: dict[Pair, ExternalContactFollow], mine: list[Pair],
                      known: set[Pair], read_at: datetime) -> None:
    """The page's tags on the relations it wrote; a tag added after the read stays. Only
    relations that existed before the page can hold tags to take off."""
    if not mine:
        return
    wanted = {pair: set(page[pair].follow_info.tag_id) for pair in mine}
    replaced = sorted({pair[1] for pair in wanted if pair in known})
    if replaced:
        rows = await session.execute(select(_FOLLOW_TAG.c.userid, _FOLLOW_TAG.c.external_userid,
                                            _FOLLOW_TAG.c.tag_id, _FOLLOW_TAG.c.added_at)
                                     .where(_FOLLOW_TAG.c.external_userid.in_(replaced)))
        gone = [{"k_u": u, "k_ext": e, "k_tag": t} for u, e, t, added in rows.all()
                if (u, e) in wanted and (u, e) in known and t not in wanted[(u, e)] and added < read_at]
        if gone:
            await session.execute(_DELETE_TAG, gone)
    fresh = [{"userid": u, "external_userid": e, "tag_id": t, "added_at": read_at}
             for (u, e), tags in wanted.items() for t in sorted(tags)]
    if fresh:
        await session.execute(insert_ignore(dialect_of(session), _FOLLOW_TAG, ["userid", "external_userid", "tag_id"]),
                              fresh)


__all__ = ["Written", "write_relations"]
