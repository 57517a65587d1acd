"""What the contacts handler wrote for a contact added in this event's transaction, for the
handlers of other features that react to the same event after it (contacts runs first among
them): the CRM links the customer by unionid and starts its tag write-back record from the
relation's tags. Without this each would read back, a statement each, what was written a moment
before in the same transaction (two of some twenty statements per welcomed customer).

Kept in the session's ``info`` under the event's inbox id, so it never outlives the event: a
session reused for another event, or the same event retried, finds nothing or what its own
contacts handler wrote. Only what is known exactly is kept: a reader that finds nothing reads
the database, as before.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

_KEY = "contacts.added"


@dataclass(frozen=True)
class AddedContact:
    """The customer's unionid as written to ``customer``, and the relation's tags as they now
    stand in ``follow_tag`` (every tag of the relation, not only those just added)."""

    unionid: str | None
    tag_ids: frozenset[str]


def remember(session: AsyncSession, inbox_id: int, userid: str, external_userid: str, unionid: str | None,
             tag_ids: Iterable[str]) -> None:
    """Called by the contacts handler after its last write of the event."""
    session.info[_KEY] = {(inbox_id, userid, external_userid): AddedContact(unionid, frozenset(tag_ids))}


def added_contact(session: AsyncSession, inbox_id: int, userid: str, external_userid: str) -> AddedContact | None:
    """What the contacts handler wrote for this event's relation, or None (read the database)."""
    known: dict[tuple[int, str, str], AddedContact] = session.info.get(_KEY) or {}
    return known.get((inbox_id, userid, external_userid))
