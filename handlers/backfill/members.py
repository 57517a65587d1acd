"""The members a paged stage walks: active members of the directory, a chunk of ≤100 at a time
in userid order, so a position is just "after userid X" (plus the chunk and WeCom's cursor
while inside it)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.backfill.context import MEMBERS_PER_CALL
from handlers.backfill.paging import Position
from handlers.contacts.api import Member
from scrm.adapters.wecom.api import WeComClient
from scrm.adapters.wecom.errors import ErrCode, WeComError

LEFT_CORP = 5  # user/get status: 退出企业


async def chunk_at(sessions: async_sessionmaker[AsyncSession],
                   position: Position) -> tuple[list[str], str] | None:
    """The member chunk a stage's position is in and WeCom's cursor inside it; at a chunk's end,
    the next chunk from its start; None once every member has been walked."""
    chunk, cursor = list(position.get("chunk") or []), str(position.get("cursor") or "")
    if not chunk:
        chunk = await next_chunk(sessions, str(position.get("after") or ""), MEMBERS_PER_CALL)
        if not chunk:
            return None
    return chunk, cursor


def position_after(chunk: list[str], next_cursor: str) -> Position:
    """Where the stage goes on: inside this chunk at WeCom's cursor, else after its last member."""
    return {"chunk": chunk, "cursor": next_cursor} if next_cursor else {"after": chunk[-1]}


async def next_chunk(sessions: async_sessionmaker[AsyncSession], after: str, size: int) -> list[str]:
    """The next ``size`` active members after ``after`` (userid order)."""
    async with sessions() as session:
        rows = await session.scalars(select(Member.userid).where(Member.status == "active", Member.userid > after)
                                     .order_by(Member.userid).limit(size))
        return list(rows.all())


async def still_members(wecom: WeComClient, chunk: list[str]) -> list[str]:
    """``chunk`` without those WeCom no longer knows (a member who left since the directory was
    read makes the whole call answer 60111); only ever called after such an answer."""
    kept = []
    for userid in chunk:
        try:
            user = await wecom.get_user(userid)
        except WeComError as exc:
            if exc.errcode == ErrCode.USERID_NOT_FOUND:
                continue
            raise
        if user.status != LEFT_CORP:
            kept.append(userid)
    return kept
