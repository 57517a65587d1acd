"""``scrm referral code CUSTOMER`` against the WeCom sandbox: one 「联系我」 QR code per customer,
its ``state`` carrying the code, connected to the customer's own managers; minting again prints
the same code without calling WeCom; a friend who scans it is the customer's referred friend.
Mistakes are one line."""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from handlers.contacts import handlers as contacts_handlers
from handlers.contacts.models import Customer, Follow
from handlers.referral import handlers as referral_handlers
from handlers.referral.cli import cmd_referral
from handlers.referral.models import Referral
from scrm.cli_support import UserError
from tests.handlers.sop.seeding import local, seed
from tests.support.stack import Stack, stack

START = local("2026-11-02", "10:00")
MANAGERS = (("zhangwei", "张伟", None), ("lina", "李娜", None))


def code_args(customer: str) -> argparse.Namespace:
    return argparse.Namespace(referral_command="code", customer=customer)


@pytest.fixture
async def bank(db_url: str, tmp_path: Path) -> AsyncIterator[Stack]:
    async with stack(db_url, tmp_path, start=START, demo=False,
                     routers=[contacts_handlers.router, referral_handlers.router]) as b:
        await seed(b, managers=MANAGERS, customers=[])
        async with b.runtime.sessions() as s, s.begin():
            for ext in ("wmAmy", "wmGone"):
                b.state.add_customer(ext, external_userid=ext)
                s.add(Customer(external_userid=ext, name=f"客户{ext[2:]}", updated_at=START))
            for days, userid in ((300, "lina"), (100, "zhangwei")):
                b.state.add_follow(userid, "wmAmy", (START - timedelta(days=days)).timestamp())
                s.add(Follow(userid=userid, external_userid="wmAmy", created_at=START - timedelta(days=days)))
            s.add(Follow(userid="zhangwei", external_userid="wmGone", created_at=START, status="lost"))
        yield b


async def test_a_code_is_a_qr_code_whose_state_brings_friends(bank: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    b = bank
    assert await cmd_referral(code_args("wmAmy"), b.settings, clock=b.clock, wecom=b.wecom) == 0
    first = capsys.readouterr().out.splitlines()
    ways = list(b.state.contact_ways.values())
    assert len(ways) == 1
    way = ways[0].body
    state = str(way["state"])
    assert state.startswith("mgm-") and len(state) <= 30
    assert (way["type"], way["scene"], way["user"], way["skip_verify"]) == (2, 2, ["lina", "zhangwei"], True)
    assert first[0] == f"客户Amy (wmAmy)  code {state[4:]}  state {state}"
    assert first[1] == f"qr_code {way['qr_code']}" and way["qr_code"]
    assert first[2] == f"config_id {ways[0].config_id}  managers lina, zhangwei"
    # Again: the same code and QR code, no second way in WeCom.
    assert await cmd_referral(code_args("wmAmy"), b.settings, clock=b.clock, wecom=b.wecom) == 0
    again = capsys.readouterr().out.splitlines()
    assert again[:2] == first[:2] and again[2] == first[2] + "  (already minted)"
    assert len(b.calls("externalcontact/add_contact_way")) == 1
    # A friend scans it and adds zhangwei: Amy's friend, whichever manager they added.
    b.clock.advance(60)
    await b.driver.add_external_contact("zhangwei", "wmFriend", name="好友", state=state)
    await b.step()
    async with b.runtime.sessions() as s:
        ref = (await s.scalars(select(Referral))).one()
    assert (ref.friend, ref.referrer, ref.userid, ref.status) == ("wmFriend", "wmAmy", "zhangwei", "pending")


async def test_mistakes_are_one_line(bank: Stack) -> None:
    b = bank
    with pytest.raises(UserError, match=r"^no customer 'wmNobody' \(an external_userid of a contact\)$"):
        await cmd_referral(code_args("wmNobody"), b.settings, clock=b.clock, wecom=b.wecom)
    with pytest.raises(UserError, match=r"^customer 'wmGone' has no active manager: a friend would have nobody"):
        await cmd_referral(code_args("wmGone"), b.settings, clock=b.clock, wecom=b.wecom)
    assert b.calls("externalcontact/add_contact_way") == []
