"""Personal referral codes: a random code per customer, carried as the ``state`` of a 「联系我」
contact way (``mgm-<code>``, 14 characters, within WeCom's 30), so every friend who adds a
manager through the QR code arrives with the referrer's code attached.

The code is random (not derived from the customer's id): a friend holding it learns nothing of
the referrer, and nobody can make up a code for someone else. A customer keeps one code for good;
minting again prints the same QR code. The way connects to the referrer's own managers (all of
their active relations, earliest first), and needs no confirmation: the friend lands with a
manager who already knows the referrer.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.contacts.api import Customer, Follow
from scrm.adapters.db.engine import dialect_of, insert_ignore, table_of
from scrm.adapters.wecom.models import AddContactWayResponse, ContactWay, GetContactWayResponse

from .models import ReferralCode

STATE_PREFIX = "mgm-"
# No 0/o, 1/l/i: a code read out over the phone or typed from a poster survives.
ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
CODE_LENGTH = 10
MAX_MANAGERS = 100  # WeCom's limit on a multi-member way's users


class MintError(Exception):
    """A code cannot be minted for this customer (one line for the CLI)."""


class ContactWayApi(Protocol):
    async def add_contact_way(self, way: ContactWay) -> AddContactWayResponse: ...

    async def get_contact_way(self, config_id: str) -> GetContactWayResponse: ...


def new_code() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))


def state_of(code: str) -> str:
    return STATE_PREFIX + code


def code_in(state: str | None) -> str | None:
    """The referral code a contact way's ``state`` carries, or None (another channel)."""
    if not state or not state.startswith(STATE_PREFIX):
        return None
    code = state[len(STATE_PREFIX):]
    return code if len(code) == CODE_LENGTH and all(c in ALPHABET for c in code) else None


async def ensure_code(session: AsyncSession, referrer: str, now: datetime) -> ReferralCode:
    """The customer's code row, created with a fresh code when missing (a concurrent mint for the
    same customer keeps the first: the primary key decides)."""
    code = new_code()
    await session.execute(insert_ignore(dialect_of(session), table_of(ReferralCode), ["external_userid"]),
                          {"external_userid": referrer, "code": code, "state": state_of(code), "config_id": None,
                           "qr_code": "", "managers": "", "created_at": now})
    row = (await session.scalars(select(ReferralCode).where(ReferralCode.external_userid == referrer))).one()
    return row


@dataclass(frozen=True)
class Minted:
    """What ``scrm referral code`` prints."""

    external_userid: str
    name: str
    code: str
    state: str
    config_id: str
    qr_code: str
    managers: tuple[str, ...]
    created: bool  # False: the customer already had this QR code


async def mint(sessions: async_sessionmaker[AsyncSession], wecom: ContactWayApi, referrer: str,
               now: datetime) -> Minted:
    """The customer's code and its QR code, made in WeCom the first time (a direct call, as
    ``scrm channels sync`` makes its ways: the QR code is the answer the caller waits for)."""
    async with sessions() as session, session.begin():
        name = await session.scalar(select(Customer.name).where(Customer.external_userid == referrer))
        if name is None:
            raise MintError(f"no customer {referrer!r} (an external_userid of a contact)")
        managers = tuple((await session.scalars(
            select(Follow.userid).where(Follow.external_userid == referrer, Follow.status == "active")
            .order_by(Follow.created_at, Follow.userid).limit(MAX_MANAGERS))).all())
        if not managers:
            raise MintError(f"customer {referrer!r} has no active manager: a friend would have nobody to add")
        row = await ensure_code(session, referrer, now)
        code, state, config_id, qr_code = row.code, row.state, row.config_id, row.qr_code
        known = tuple(m for m in row.managers.split(",") if m)
    if config_id:
        return Minted(referrer, name, code, state, config_id, qr_code, known, False)
    way = ContactWay(type=1 if len(managers) == 1 else 2, scene=2, remark=f"老带新·{name}"[:30], skip_verify=True,
                     state=state, user=list(managers))
    created = await wecom.add_contact_way(way)
    qr = created.qr_code or (await wecom.get_contact_way(created.config_id)).contact_way.qr_code
    async with sessions() as session, session.begin():
        await session.execute(update(ReferralCode).where(ReferralCode.external_userid == referrer)
                              .values(config_id=created.config_id, qr_code=qr, managers=",".join(managers)))
    return Minted(referrer, name, code, state, created.config_id, qr, managers, True)
